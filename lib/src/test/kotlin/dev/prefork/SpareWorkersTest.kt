package dev.prefork

import dev.prefork.testing.FixtureJvm
import dev.prefork.testing.Load
import dev.prefork.testing.ProcFs
import dev.prefork.testing.get
import dev.prefork.testing.kill
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldNotContain
import java.io.IOException
import kotlin.time.Duration.Companion.seconds

private const val FIXTURE = "dev.prefork.fixtures.SparesFixtureKt"

/** `ForkOptions.spareWorkers`: JVMs that wait in their `forkProcesses` to take over a worker's id. */
class SpareWorkersTest : FunSpec({
    /** A supervisor with [n] workers and [spares] spares, up and answering; killed, with all it started, if it is not. */
    class Server(n: Int, spares: Int) : AutoCloseable {
        val jvm = FixtureJvm(FIXTURE, listOf("spares", n.toString(), spares.toString()))
        private var seenWorkers = 0
        private var seenSpares = 0
        val port: Int
        val workers: MutableMap<Int, Long>
        val spares: MutableList<Long>

        init {
            try {
                port = jvm.awaitLine(Regex("port (\\d+)")).groupValues[1].toInt()
                workers = (0 until n).associate { awaitWorker() }.toMutableMap()
                this.spares = (0 until spares).map { awaitSpare() }.toMutableList()
            } catch (e: Throwable) {
                jvm.close()
                throw e
            }
        }

        /** The next worker line of stdout, in order (lines of other kinds in between are not lost). */
        fun awaitWorker(): Pair<Int, Long> = awaitNth(Regex("worker (\\d+) pid (\\d+) taskId=(\\d+) spare=false"), seenWorkers++)
            .groupValues.let { it[1].toInt() to it[2].toLong() }

        fun awaitSpare(): Long = awaitNth(Regex("spare pid (\\d+) waiting, taskId=null"), seenSpares++).groupValues[1].toLong()

        private fun awaitNth(regex: Regex, index: Int): MatchResult {
            val deadline = System.nanoTime() + 30_000_000_000
            while (true) {
                regex.findAll(jvm.stdout()).elementAtOrNull(index)?.let { return it }
                check(System.nanoTime() < deadline) { "no line #${index + 1} matching $regex within 30 s; stdout:\n${jvm.stdout()}\nstderr:\n${jvm.stderr()}" }
                Thread.sleep(20)
            }
        }

        /** Whoever answers `/id`: (task id, pid). */
        fun ask(): Pair<Int, Long> = get(port, "/id").split(" ").let { it[0].toInt() to it[1].toLong() }

        fun log(): String = jvm.stdout() + jvm.stderr()

        override fun close() = jvm.close()
    }

    test("a spare takes over the id of a killed worker, answers on the shared socket, and a new spare follows") {
        Server(2, 1).use { server ->
            val spare = server.spares.single()
            val victim = server.workers.getValue(0)
            kill(victim, 9)
            server.awaitWorker() shouldBe (0 to spare) // its forkProcesses returned 0, and taskId() agrees
            eventually(10.seconds) { server.ask() shouldBe (0 to spare) } // fresh connections reach every worker in turn
            val log = server.log()
            log shouldContain "child 0 (pid $victim) killed by signal 9, restarting"
            log shouldContain "event child 0 (pid $spare) started (a spare took over)"
            val next = server.awaitSpare()
            next shouldNotBe spare
            server.log() shouldContain "event spare (pid $next) started"
        }
    }

    test("a spare never accepts before it is assigned: with the only worker stopped, connections wait for it") {
        Server(1, 1).use { server ->
            val worker = server.workers.getValue(0)
            repeat(50) { server.ask() shouldBe (0 to worker) }
            kill(worker, 19) // SIGSTOP: a spare that accepted would answer now
            try {
                shouldThrow<IOException> { get(server.port, "/id", timeoutMillis = 1_500) }
            } finally {
                kill(worker, 18)
            }
            server.ask() shouldBe (0 to worker)
            ProcFs.alive(server.spares.single()) shouldBe true
        }
    }

    test("a spare that dies before it is assigned is replaced by another, and costs no restart") {
        Server(1, 1).use { server ->
            val spare = server.spares.single()
            kill(spare, 9)
            val next = server.awaitSpare()
            next shouldNotBe spare
            server.log() shouldContain "event spare (pid $spare) killed by signal 9, restarting"
            server.ask() shouldBe (0 to server.workers.getValue(0))
            server.log() shouldNotContain Regex("child \\d+ \\(pid \\d+\\) .*restarting") // no worker restart was counted
        }
    }

    test("SIGHUP replaces the spares too, then every worker, with no failed request; none of the old JVMs is left") {
        Server(2, 1).use { server ->
            val old = server.workers.values.toSet() + server.spares
            Load(server.port, clients = 4).use { load ->
                Thread.sleep(300)
                server.jvm.signal(1)
                eventually(60.seconds) { server.log() shouldContain "rolling restart done" }
                Thread.sleep(300)
                load.failures.get() shouldBe 0
                load.served.get() shouldNotBe 0
            }
            old.forEach { pid -> eventually(10.seconds) { ProcFs.alive(pid) shouldBe false } }
            eventually(20.seconds) { // the last spare's replacement starts a second after it took over
                val now = server.jvm.process.children().map { it.pid() }.toList().toSet()
                now.size shouldBe 3 // two workers and a spare, all started after the SIGHUP
                (now intersect old) shouldBe emptySet()
            }
        }
    }

    test("with a SO_REUSEPORT socket group there are no spares (they would hold sockets they never accept on), and no request is lost") {
        FixtureJvm(FIXTURE, listOf("spares-reuseport")).use { f ->
            val port = f.awaitLine(Regex("port (\\d+)")).groupValues[1].toInt()
            f.awaitLine(Regex("worker 0 pid (\\d+)"))
            eventually(30.seconds) { f.stderr() shouldContain "spareWorkers(1) is off" }
            Thread.sleep(2_000) // when a spare or a training run would be up
            repeat(200) { get(port, "/id", timeoutMillis = 2_000) }
            f.stdout() shouldNotContain "spare pid"
        }
    }

    test("SIGTERM stops the spares with the workers and exits 0; kill -9 of the supervisor leaves no spare") {
        Server(1, 1).use { server ->
            val everyone = server.workers.values + server.spares
            server.jvm.signal(15)
            server.jvm.exitCode(30) shouldBe 0
            everyone.forEach { ProcFs.alive(it) shouldBe false }
            server.log() shouldNotContain "restarting"
        }
        Server(1, 2).use { server ->
            val everyone = server.workers.values + server.spares
            server.jvm.process.destroyForcibly()
            eventually(10.seconds) { everyone.forEach { ProcFs.alive(it) shouldBe false } }
        }
    }
})
