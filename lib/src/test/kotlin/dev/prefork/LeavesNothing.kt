package dev.prefork

import dev.prefork.testing.ProcFs
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.assertions.withClue
import io.kotest.matchers.collections.shouldContainExactly
import io.kotest.matchers.ints.shouldBeLessThanOrEqual
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.delay
import java.io.File
import java.io.IOException
import java.nio.file.Files
import java.nio.file.Path
import kotlin.time.Duration.Companion.seconds

/** This JVM's open fds, each with what it points at, so a failure names what was left open. */
internal fun openFds(): Map<Int, String> = ProcFs.openFds().associateWith {
    runCatching { Files.readSymbolicLink(Path.of("/proc/self/fd/$it")).toString() }.getOrDefault("?")
}

/**
 * This JVM's threads but kotlinx's IO pool, which grows with a bulk stream's pumps and keeps
 * idle workers for a minute: a count of those would measure its elasticity, not a leak.
 */
internal fun ownThreads(): Int = Thread.getAllStackTraces().keys.count { !it.name.startsWith("DefaultDispatcher-worker") }

/** This JVM's children, in any state: a child left running or unreaped shows here. */
internal fun childPids(): List<Long> = File("/proc").list().orEmpty().mapNotNull { it.toLongOrNull() }.filter { pid ->
    try {
        val stat = File("/proc/$pid/stat").readText()
        stat.substring(stat.lastIndexOf(')') + 2).split(' ')[1].toLong() == ProcFs.selfPid
    } catch (e: IOException) {
        false
    }
}

/**
 * Runs [block] and requires this JVM's fds back where they were (within 5 s: the reactor, or a
 * blocking waiter, closes a reaped child's pidfd just after), and no child zombie; with [threads], its own threads
 * within 2 of before; with [children], its children exactly those of before. [warmUp] runs
 * first, so the reactor and pools exist before the count.
 */
internal suspend fun <T> leavesNothing(
    threads: Boolean = false,
    children: Boolean = false,
    warmUp: suspend () -> Unit = { Subprocess.builder("true").run() },
    block: suspend () -> T,
): T {
    warmUp()
    delay(100)
    val fdsBefore = openFds()
    val threadsBefore = ownThreads()
    val childrenBefore = childPids()
    val result = block()
    eventually(5.seconds) {
        val now = openFds()
        withClue({ "fds opened since: ${now - fdsBefore.keys}" }) { now.size shouldBeLessThanOrEqual fdsBefore.size }
    }
    if (threads) ownThreads() shouldBeLessThanOrEqual threadsBefore + 2
    if (children) childPids() shouldContainExactly childrenBefore
    ProcFs.zombieChildren() shouldBe emptyList()
    return result
}
