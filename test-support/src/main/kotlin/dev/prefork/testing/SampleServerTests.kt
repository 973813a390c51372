package dev.prefork.testing

import io.kotest.assertions.nondeterministic.eventually
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.longs.shouldBeGreaterThan
import io.kotest.matchers.longs.shouldBeLessThanOrEqual
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import java.io.IOException
import java.nio.file.Files
import java.nio.file.Path
import kotlin.time.Duration.Companion.seconds

/**
 * The contract every framework sample keeps, checked against its executable jar (system
 * property `prefork.sample.jar`) started as a user would, `java -jar <jar> --port=0
 * --workers=2`, in a fresh JVM, under load from wrk. The sample prints `http://127.0.0.1:<port>`
 * once bound and answers `GET /` with a body naming the answering worker's `pid N`.
 */
abstract class SampleServerTests(name: String, private val startSeconds: Long = 60) : FunSpec() {
    private val jar: Path = Path.of(checkNotNull(System.getProperty("prefork.sample.jar")) { "system property prefork.sample.jar is not set" })

    /** A supervisor with two workers, both answering; [close] kills whatever is left, as does a failed start. */
    private inner class Server : AutoCloseable {
        val jvm = FixtureJvm(null, listOf("--port=0", "--workers=2"), jar = jar)
        val port: Int
        var pids: Set<Long>

        init {
            try {
                port = jvm.awaitLine(Regex("http://127\\.0\\.0\\.1:(\\d+)"), startSeconds).groupValues[1].toInt()
                pids = awaitPids(2, emptySet())
            } catch (e: Throwable) {
                jvm.close()
                throw e
            }
        }

        /** Until [n] workers answered that are not in [old]: each GET is a fresh connection, so the kernel spreads them. */
        fun awaitPids(n: Int, old: Set<Long>): Set<Long> {
            val seen = mutableSetOf<Long>()
            val deadline = System.nanoTime() + startSeconds * 1_000_000_000
            while (seen.size < n) {
                check(System.nanoTime() < deadline) { "only workers $seen answered within ${startSeconds}s; stdout:\n${jvm.stdout()}\nstderr:\n${jvm.stderr()}" }
                check(jvm.process.isAlive) { "the supervisor exited ${jvm.process.exitValue()}; stdout:\n${jvm.stdout()}\nstderr:\n${jvm.stderr()}" }
                try {
                    pidIn(get(port, timeoutMillis = 5_000))?.takeIf { it !in old }?.let { seen += it }
                } catch (e: IOException) {
                    Thread.sleep(100) // not bound yet
                }
            }
            return seen
        }

        fun log(): String = jvm.stdout() + jvm.stderr()

        override fun close() = jvm.close()
    }

    init {
        Files.isRegularFile(jar) shouldBe true

        for (keepAlive in listOf(false, true)) {
            val mode = if (keepAlive) "keep-alive connections" else "a connection per request"
            test("$name: two SIGHUPs in a row under wrk load ($mode) fail no request and leave new workers") {
                Server().use { server ->
                    val before = server.pids
                    Wrk(server.port, connections = 16, keepAlive = keepAlive).use { wrk ->
                        for (round in 1..2) {
                            Thread.sleep(1_000)
                            server.jvm.signal(1)
                            eventually((2 * startSeconds).seconds) { Regex("rolling restart done").findAll(server.log()).count() shouldBe round }
                        }
                        Thread.sleep(1_000)
                        val result = wrk.stop()
                        println("$name, two SIGHUPs, $mode: $result")
                        result.failures shouldBe 0
                        result.requests shouldBeGreaterThan 200
                    }
                    val after = server.awaitPids(2, before)
                    after shouldHaveSize 2
                    before.forEach { ProcFs.alive(it) shouldBe false }
                }
            }
        }

        test("$name: kill -9 of a worker under load costs at most the requests in flight and it comes back; SIGTERM then stops all with status 0") {
            Server().use { server ->
                val victim = server.pids.first()
                val connections = 16
                Wrk(server.port, connections = connections).use { wrk ->
                    Thread.sleep(1_000)
                    kill(victim, 9)
                    eventually(startSeconds.seconds) {
                        server.log() shouldContain Regex("child \\d \\(pid $victim\\) killed by signal 9, restarting")
                    }
                    val fresh = server.awaitPids(1, server.pids)
                    fresh shouldHaveSize 1
                    Thread.sleep(1_000)
                    val result = wrk.stop()
                    println("$name, kill -9 of a worker: $result")
                    result.connectErrors shouldBe 0
                    result.failures shouldBeLessThanOrEqual connections.toLong()
                    result.requests shouldBeGreaterThan 100
                    server.pids = server.pids - victim + fresh
                }
                val everyProcess = server.jvm.process.descendants().map { it.pid() }.toList().toSet() + server.pids
                everyProcess.size shouldBe 2 // the two workers, nothing else
                server.jvm.signal(15)
                server.jvm.exitCode(60) shouldBe 0
                everyProcess.forEach { ProcFs.alive(it) shouldBe false }
            }
        }
    }
}
