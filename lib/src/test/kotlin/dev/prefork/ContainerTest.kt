package dev.prefork

import dev.prefork.testing.FixtureJvm
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.core.spec.style.FunSpec
import io.kotest.core.test.Enabled
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import java.io.File
import kotlin.time.Duration.Companion.seconds

private const val FIXTURE = "dev.prefork.fixtures.OrphansFixtureKt"

/** `unshare --pid --fork --mount-proc`: the fixture is PID 1 of a PID namespace of its own, as a container's entry point is. */
private val PID_NAMESPACE = listOf("unshare", "--pid", "--fork", "--mount-proc")

/** Root, or a user allowed to make namespaces: where the sandbox refuses, the test says so and does not run. */
private val canUnshare: Boolean by lazy {
    ProcessBuilder(PID_NAMESPACE + "true").redirectErrorStream(true).start().waitFor() == 0
}

class ContainerTest : FunSpec({
    /** Processes whose parent is [parent], as (pid, state, command) from /proc (this test's view: host pids). */
    fun childrenOf(parent: Long): List<Triple<Long, String, String>> = (File("/proc").list() ?: emptyArray()).mapNotNull { entry ->
        val pid = entry.toLongOrNull() ?: return@mapNotNull null
        val stat = runCatching { File("/proc/$entry/stat").readText() }.getOrNull() ?: return@mapNotNull null
        val comm = stat.substring(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
        val fields = stat.substring(stat.lastIndexOf(')') + 2).split(' ')
        if (fields[1].toLong() == parent) Triple(pid, fields[0], comm) else null
    }

    test("as PID 1 the supervisor reaps the orphans reparented to it, refuses SIGUSR2, and a SIGTERM stops it gracefully with status 0").config(enabledOrReasonIf = {
        if (canUnshare) Enabled.enabled else Enabled.disabled("${PID_NAMESPACE.joinToString(" ")} is not permitted here")
    }) {
        FixtureJvm(FIXTURE, listOf("orphans"), launcher = PID_NAMESPACE).use { f ->
            f.awaitLine(Regex("supervisor pid 1$"))
            repeat(2) { f.awaitLine(Regex("worker [01] pid \\d+ left its orphans")) }
            // unshare forks: its child, PID 1 inside, is the supervisor JVM.
            val supervisor = f.process.children().findFirst().get().pid()
            // The shells exited at once: their sleeps are the supervisor's children now, as orphans are a container's PID 1's.
            childrenOf(supervisor).count { it.third == "sleep" } shouldBeGreaterThan 0
            eventually(10.seconds) {
                childrenOf(supervisor).filter { it.third == "sleep" || it.second == "Z" && it.third != "java" }.shouldBeEmpty()
            }
            f.stderr() shouldContain "running as PID 1: orphaned processes of this container are reaped"
            // An upgrade would end the container with the old PID 1: refused, and said so.
            dev.prefork.testing.kill(supervisor, 12)
            eventually(10.seconds) { f.stderr() shouldContain "SIGUSR2: as PID 1 this supervisor cannot hand over" }
            dev.prefork.testing.kill(supervisor, 15)
            f.exitCode(60) shouldBe 0
        }
    }
})
