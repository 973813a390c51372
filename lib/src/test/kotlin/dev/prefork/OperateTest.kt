package dev.prefork

import dev.prefork.testing.FixtureJvm
import dev.prefork.testing.Load
import dev.prefork.testing.ProcFs
import dev.prefork.testing.get
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContainExactly
import io.kotest.matchers.doubles.shouldBeGreaterThan as shouldBeMoreThan
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.longs.shouldBeGreaterThan
import io.kotest.matchers.longs.shouldBeLessThan
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import io.kotest.matchers.string.shouldContain
import kotlin.time.Duration.Companion.seconds

private const val FIXTURE = "dev.prefork.fixtures.OperateFixtureKt"
private const val SIGUSR1 = 10
private const val SIGKILL = 9
private const val SIGSTOP = 19

/** `operated <n> <workerTimeout ms> <graceful ms> <maxWorkerRss MiB> <maxWorkerAge ms> <jitter ms>`. */
private fun operated(vararg limits: Long, jvmFlags: List<String> = emptyList()) =
    FixtureJvm(FIXTURE, listOf("operated") + limits.map { it.toString() }, jvmFlags = jvmFlags)

/** The port, and each worker's pid by id, as the fixture prints them. */
private fun FixtureJvm.started(n: Int): Pair<Int, Map<Int, Long>> {
    val port = awaitLine(Regex("supervisor pid \\d+ port (\\d+)")).groupValues[1].toInt()
    val pids = (0 until n).associate { awaitLine(Regex("^worker (\\d+) pid (\\d+)")).destructured.let { (id, pid) -> id.toInt() to pid.toLong() } }
    return port to pids
}

/** Stops the load and requires that it was served throughout, [what] went on meanwhile. */
private fun Load.settled(what: String) {
    close()
    println("OperateTest: ${served.get()} requests $what, ${failures.get()} failed")
    failures.get() shouldBe 0
    served.get() shouldBeGreaterThan 0
}

/** gunicorn's and Puma's operator features: hung workers, recycling, a status report. */
class OperateTest : FunSpec({
    test("a SIGSTOPped worker times out: SIGTERM, then restarted with its id, within workerTimeout + gracefulTimeout") {
        operated(2, 2_000, 2_000, 0, 0, 0).use { f ->
            val (port, pids) = f.started(2)
            val stopped = pids.getValue(1)
            val t0 = System.nanoTime()
            Runtime.getRuntime().exec(arrayOf("kill", "-$SIGSTOP", stopped.toString())).waitFor()
            val silent = f.awaitLine(Regex("event child 1 \\(pid $stopped\\) timed out, silent for (\\d+) ms")).groupValues[1].toLong()
            val timedOutMillis = (System.nanoTime() - t0) / 1_000_000
            // Sent SIGCONT with its SIGTERM, the stopped JVM shuts down by itself: an exit status, not SIGKILL's signal 9.
            f.awaitLine(Regex("event child 1 \\(pid $stopped\\) exited with status \\d+, restarting"))
            val fresh = f.awaitLine(Regex("event child 1 \\(pid (\\d+)\\) started")).groupValues[1].toLong()
            val replacedMillis = (System.nanoTime() - t0) / 1_000_000
            println("OperateTest: SIGSTOP at 0 ms, timed out at $timedOutMillis ms, replacement started at $replacedMillis ms (workerTimeout 2000 + graceful 2000)")
            silent shouldBeGreaterThan 2_000L
            // Its last heartbeat may have come up to 500 ms (one period) before the SIGSTOP.
            timedOutMillis shouldBeGreaterThan 1_400L
            // Checks run every 500 ms; the replacement starts once the old JVM is gone, within the graceful timeout.
            replacedMillis shouldBeLessThan 2_000L + 2_000L + 2_000L
            fresh shouldNotBe stopped
            f.awaitLine(Regex("^worker 1 pid $fresh"))
            eventually(10.seconds) { ProcFs.alive(stopped) shouldBe false }
            f.stderr() shouldContain Regex("child 1 \\(pid $stopped\\) timed out: no heartbeat for \\d+ ms \\(workerTimeout PT2S\\); stopping it")
            f.stderr() shouldContain Regex("child 1 \\(pid $stopped\\) timed out, (exited with status|killed by signal) \\d+, restarting")
            eventually(20.seconds) { get(port, "/id") shouldBe "0 ${pids.getValue(0)}" }
            f.signal(15)
            f.exitCode(60) shouldBe 0
        }
    }

    test("a worker whose health check fails, or hangs as a deadlock would, is timed out and replaced; no request fails") {
        operated(2, 1_500, 5_000, 0, 0, 0).use { f ->
            val (port, _) = f.started(2)
            Load(port, clients = 4).use { load ->
                Thread.sleep(300)
                for (breakage in listOf("/sick", "/hang")) {
                    // Whichever worker takes the request goes unhealthy; its answer names it.
                    val broken = get(port, breakage).trim().toLong()
                    val id = f.awaitLine(Regex("event child (\\d+) \\(pid $broken\\) timed out")).groupValues[1]
                    val fresh = f.awaitLine(Regex("event child $id \\(pid (\\d+)\\) started")).groupValues[1].toLong()
                    f.awaitLine(Regex("event child $id \\(pid $fresh\\) ready"))
                    eventually(20.seconds) { ProcFs.alive(broken) shouldBe false }
                    println("OperateTest: $breakage: child $id (pid $broken) timed out and was replaced by pid $fresh")
                }
                Thread.sleep(300)
                load.settled("across two timed-out workers")
            }
            f.stderr() shouldContain "health check says unhealthy"
            f.signal(15)
            f.exitCode(60) shouldBe 0
        }
    }

    test("a worker past maxWorkerRss is replaced gracefully under load, its replacement serving first; no restart counted, no request failed") {
        // A young generation of fixed size keeps a worker near its 45-50 MiB at start however hard the load; /grow adds 400 MiB to one.
        operated(2, 0, 10_000, 300, 0, 0, jvmFlags = listOf("-XX:+UseSerialGC", "-Xmn16m", "-Xms64m", "-Xmx1g")).use { f ->
            val (port, _) = f.started(2)
            Load(port, clients = 4).use { load ->
                Thread.sleep(300)
                val grown = get(port, "/grow?mb=400").trim().toLong()
                val (id, reason) = f.awaitLine(Regex("event child (\\d+) \\(pid $grown\\) recycled: (RSS \\d+ MiB, past maxWorkerRss 300 MiB)")).destructured
                val fresh = f.awaitLine(Regex("event child $id \\(pid (\\d+)\\) started")).groupValues[1].toLong()
                f.awaitLine(Regex("event child $id \\(pid $fresh\\) ready"))
                // Only then is the grown worker stopped: its exit is no restart.
                f.awaitLine(Regex("event child $id \\(pid $grown\\) (exited with status \\d+|killed by signal \\d+)$"))
                eventually(20.seconds) { ProcFs.alive(grown) shouldBe false }
                println("OperateTest: child $id (pid $grown) recycled ($reason), pid $fresh serves")
                Thread.sleep(300)
                load.settled("while recycling")
            }
            f.stderr() shouldContain Regex("child \\d+ \\(pid \\d+\\) exited with status \\d+, recycled")
            f.signal(SIGUSR1)
            eventually(10.seconds) {
                withClue(f.stderr()) { Regex("SIGUSR1: child \\d+ \\(pid \\d+\\) serving, up \\S+, 0 restarts").findAll(f.stderr()).count() shouldBe 2 }
            }
            f.signal(15)
            f.exitCode(60) shouldBe 0
        }
    }

    test("maxWorkerAge with jitter replaces every worker in turn, one at a time; no request fails") {
        operated(2, 0, 10_000, 0, 4_000, 1_000).use { f ->
            val (port, pids) = f.started(2)
            Load(port, clients = 4).use { load ->
                val recycled = Regex("event child (\\d+) \\(pid (\\d+)\\) recycled: up \\d+ ms, past maxWorkerAge PT4S")
                val (first, firstPid) = f.awaitLine(recycled, 60).destructured
                val (second, secondPid) = f.awaitLine(recycled, 60).destructured
                // One at a time: the second starts only once the first's old worker exited (its exit event may still be on its way).
                ProcFs.alive(firstPid.toLong()) shouldBe false
                withClue(f.stdout() + f.stderr()) {
                    setOf(first.toInt(), second.toInt()) shouldBe setOf(0, 1)
                    mapOf(first.toInt() to firstPid.toLong(), second.toInt() to secondPid.toLong()) shouldBe pids
                }
                eventually(30.seconds) { ProcFs.alive(secondPid.toLong()) shouldBe false }
                load.settled("while both workers were recycled by age in turn")
            }
            f.signal(15)
            f.exitCode(60) shouldBe 0
        }
    }

    test("SIGUSR1 logs every worker's pid, uptime, restarts, CPU and RSS; workerStatus() in the supervisor says the same") {
        operated(3, 0, 5_000, 0, 0, 0).use { f ->
            val (_, pids) = f.started(3)
            // The listener's call to workerStatus() at each readiness: the last lists all three.
            eventually(20.seconds) {
                val status = f.stdout().lines().last { it.startsWith("status ") }
                Regex("child (\\d) \\(pid (\\d+)\\) serving").findAll(status).map { it.groupValues[1].toInt() to it.groupValues[2].toLong() }.toList() shouldContainExactly pids.toList().sortedBy { it.first }
            }
            Runtime.getRuntime().exec(arrayOf("kill", "-$SIGKILL", pids.getValue(2).toString())).waitFor()
            val fresh = f.awaitLine(Regex("event child 2 \\(pid (\\d+)\\) started")).groupValues[1].toLong()
            f.awaitLine(Regex("event child 2 \\(pid $fresh\\) ready"))
            f.signal(SIGUSR1)
            eventually(10.seconds) { f.stderr() shouldContain "SIGUSR1: supervisor pid ${f.pid} serving, 3 workers, 3 serving, 0 restarting, 0 spares" }
            val report = eventually(10.seconds) {
                Regex("SIGUSR1: child (\\d) \\(pid (\\d+)\\) serving, up (\\S+), (\\d+) restarts?, cpu ([\\d.]+) s, rss ([\\d.]+) MiB")
                    .findAll(f.stderr()).toList().also { it.size shouldBe 3 }
            }
            println("OperateTest: SIGUSR1 printed\n" + report.joinToString("\n") { it.value })
            report.map { it.groupValues[1].toInt() to it.groupValues[2].toLong() } shouldContainExactly (pids + (2 to fresh)).toList().sortedBy { it.first }
            report.map { it.groupValues[4].toInt() } shouldContainExactly listOf(0, 0, 1)
            report.forEach { it.groupValues[6].toDouble() shouldBeMoreThan 10.0 }
            // Each worker JVM has used CPU to start: a reading of /proc, not a constant.
            report.forEach { it.groupValues[5].toDouble() shouldBeMoreThan 0.0 }
            f.signal(15)
            f.exitCode(60) shouldBe 0
        }
    }
})
