package dev.prefork

import dev.prefork.testing.FixtureJvm
import dev.prefork.testing.Load
import dev.prefork.testing.ProcFs
import dev.prefork.testing.get
import dev.prefork.testing.kill
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeIn
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import io.kotest.matchers.string.shouldContain
import java.nio.file.Files
import kotlin.time.Duration.Companion.seconds

private const val FIXTURE = "dev.prefork.fixtures.UpgradeFixtureKt"
private const val SIGUSR2 = 12

/** unicorn's and nginx's SIGUSR2: the supervisor itself replaced by a new one from the command line, sockets handed over. */
class UpgradeTest : FunSpec({
    /** The new supervisor is no descendant of the fixture once the old one exited: stopped here, its workers follow it. */
    fun stopOrphan(pid: Long?) {
        if (pid == null || !ProcFs.alive(pid)) return
        val descendants = ProcessHandle.of(pid).map { it.descendants().toList() }.orElse(emptyList())
        kill(pid, 9)
        descendants.forEach { it.destroyForcibly() }
    }

    test("SIGUSR2 under load: the new supervisor's workers take over the same socket, the old ones stop, no request fails") {
        val marker = Files.createTempFile("prefork-upgrade", ".broken").also { Files.delete(it) }
        var successor: Long? = null
        try {
            FixtureJvm(FIXTURE, listOf("upgradable", marker.toString())).use { f ->
                val (old, port) = f.awaitLine(Regex("supervisor pid (\\d+) port (\\d+)")).destructured
                val oldWorkers = (0 until 2).map { f.awaitLine(Regex("worker \\d pid (\\d+)")).groupValues[1].toLong() }.toSet()
                val load = Load(port.toInt(), clients = 4)
                load.use {
                    Thread.sleep(300)
                    f.signal(SIGUSR2)
                    val (fresh, freshPort) = f.awaitLine(Regex("supervisor pid (\\d+) port (\\d+)"), seconds = 60).destructured
                    successor = fresh.toLong()
                    fresh shouldNotBe old
                    freshPort shouldBe port
                    val newWorkers = (0 until 2).map { f.awaitLine(Regex("worker \\d pid (\\d+)"), seconds = 60).groupValues[1].toLong() }.toSet()
                    // The old supervisor stops its workers once the new ones serve, and exits 0.
                    f.exitCode(60) shouldBe 0
                    oldWorkers.forEach { ProcFs.alive(it) shouldBe false }
                    Thread.sleep(300)
                    eventually(10.seconds) {
                        (get(port.toInt(), "/id").substringAfter(' ').toLong()) shouldBeIn newWorkers
                    }
                    ProcessHandle.of(successor!!).get().children().map { it.pid() }.toList().toSet().containsAll(newWorkers) shouldBe true
                }
                println("UpgradeTest: ${load.served.get()} requests across the upgrade, ${load.failures.get()} failed")
                load.failures.get() shouldBe 0
                load.served.get() shouldBeGreaterThan 0
                f.stderr() shouldContain "SIGUSR2: the new supervisor (pid $successor) serves; stopping this one's 2 workers"
            }
        } finally {
            stopOrphan(successor)
        }
    }

    test("a graceful stop during an upgrade stops the new supervisor too") {
        val marker = Files.createTempFile("prefork-upgrade", ".broken")
        Files.writeString(marker, "hang")
        var successor: Long? = null
        try {
            FixtureJvm(FIXTURE, listOf("upgradable", marker.toString())).use { f ->
                f.awaitLine(Regex("supervisor pid (\\d+) port (\\d+)"))
                repeat(2) { f.awaitLine(Regex("worker \\d pid (\\d+)")) }
                f.signal(SIGUSR2)
                successor = f.awaitLine(Regex("new supervisor pid (\\d+) hangs"), seconds = 60).groupValues[1].toLong()
                f.signal(15)
                f.exitCode(60) shouldBe 0
                ProcFs.alive(successor!!) shouldBe false
            }
        } finally {
            stopOrphan(successor)
            Files.deleteIfExists(marker)
        }
    }

    test("a new supervisor that fails to start leaves the old one serving, and the log says why") {
        val marker = Files.createTempFile("prefork-upgrade", ".broken")
        try {
            FixtureJvm(FIXTURE, listOf("upgradable", marker.toString())).use { f ->
                val port = f.awaitLine(Regex("supervisor pid (\\d+) port (\\d+)")).groupValues[2].toInt()
                val workers = (0 until 2).map { f.awaitLine(Regex("worker \\d pid (\\d+)")).groupValues[1].toLong() }.toSet()
                f.signal(SIGUSR2)
                val failed = f.awaitLine(Regex("new supervisor pid (\\d+) fails to start"), seconds = 60).groupValues[1]
                eventually(30.seconds) {
                    f.stderr() shouldContain
                        "SIGUSR2: the new supervisor (pid $failed) exited before it was ready (exited with status 5); this one keeps serving"
                }
                get(port, "/id").substringAfter(' ').toLong() shouldBeIn workers
                f.signal(15)
                f.exitCode(60) shouldBe 0
            }
        } finally {
            Files.deleteIfExists(marker)
        }
    }
})
