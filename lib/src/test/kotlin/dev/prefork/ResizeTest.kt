package dev.prefork

import dev.prefork.testing.FixtureJvm
import dev.prefork.testing.Load
import dev.prefork.testing.ProcFs
import dev.prefork.testing.get
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import kotlin.time.Duration.Companion.seconds

private const val FIXTURE = "dev.prefork.fixtures.ForkFixtureKt"
private const val GROW_FIXTURE = "dev.prefork.fixtures.ResizeFixtureKt"
private const val SIGTTIN = 21
private const val SIGTTOU = 22

/** gunicorn's and unicorn's TTIN/TTOU: the pool grows and shrinks while it serves, ids staying `0 until n`. */
class ResizeTest : FunSpec({
    test("SIGTTIN adds worker 2, SIGTTOU removes the highest ids gracefully, the last one stays; no request fails") {
        FixtureJvm(FIXTURE, listOf("serve", "2")).use { f ->
            val port = f.awaitLine(Regex("port (\\d+)")).groupValues[1].toInt()
            val first = (0 until 2).associate { f.awaitLine(Regex("worker (\\d) pid (\\d+)")).destructured.let { (id, pid) -> id.toInt() to pid.toLong() } }
            var added = 0L
            Load(port, clients = 4).use { load ->
                Thread.sleep(300)
                f.signal(SIGTTIN)
                // The listener's event comes before the worker's own line.
                added = f.awaitLine(Regex("event child 2 \\(pid (\\d+)\\) added")).groupValues[1].toLong()
                f.awaitLine(Regex("worker 2 pid $added"))
                // The new worker serves on the same socket.
                eventually(20.seconds) { get(port, "/id").substringBefore(' ') shouldBe "2" }
                f.signal(SIGTTOU)
                f.awaitLine(Regex("event child 2 \\(pid $added\\) removed"))
                eventually(20.seconds) { ProcFs.alive(added) shouldBe false }
                f.signal(SIGTTOU)
                f.awaitLine(Regex("event child 1 \\(pid ${first.getValue(1)}\\) removed"))
                eventually(20.seconds) { ProcFs.alive(first.getValue(1)) shouldBe false }
                f.signal(SIGTTOU)
                eventually(10.seconds) { f.stderr() shouldContain "SIGTTOU: the last worker is not removed" }
                ProcFs.alive(first.getValue(0)) shouldBe true
                repeat(5) { get(port, "/id").substringBefore(' ') shouldBe "0" }
                Thread.sleep(300)
                load.close()
                println("ResizeTest: ${load.served.get()} requests while resizing, ${load.failures.get()} failed")
                load.failures.get() shouldBe 0
                load.served.get() shouldBeGreaterThan 0
            }
            f.stderr() shouldContain Regex("child 2 \\(pid $added\\) (exited with status \\d+|killed by signal \\d+), removed")
            f.signal(15)
            f.exitCode(60) shouldBe 0
        }
    }

    test("addWorker() from code in the supervisor adds the next id; outside a running supervisor it says so") {
        FixtureJvm(GROW_FIXTURE, listOf("grow")).use { f ->
            f.awaitLine(Regex("addWorker before forkProcesses: addWorker: no supervisor runs in this process"))
            val added = f.awaitLine(Regex("event child 1 \\(pid (\\d+)\\) added")).groupValues[1]
            f.awaitLine(Regex("worker 1 pid $added"))
            f.signal(15)
            f.exitCode(60) shouldBe 0
        }
    }
})
