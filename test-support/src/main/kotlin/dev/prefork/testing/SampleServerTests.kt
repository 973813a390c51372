package dev.prefork.testing

import io.kotest.assertions.nondeterministic.eventually
import io.kotest.assertions.withClue
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
 * The contract every framework sample keeps, checked against its executable [jar] started as a
 * user would, `java -jar <jar> --port=0 --workers=2` ([jvmFlags] before `-jar`), in a fresh
 * JVM, under load from wrk: one boot of the framework runs every phase in turn.
 * 1. Both workers answer on the one shared socket.
 * 2. Two SIGHUPs, one under wrk with a connection per request, one with keep-alive
 *    connections: no request fails, and two new workers answer.
 * 3. kill -9 of a worker under load: at most the requests in flight fail (one per wrk
 *    connection), no connection is refused, and a replacement answers.
 * 4. SIGTERM: every process exits, the supervisor with status 0.
 *
 * The sample prints `http://127.0.0.1:<port>` once bound and answers `GET /` with a body naming
 * the answering worker's `pid N`. What each phase measured is printed on one line starting
 * `contract <name>:`, the figures of the contract table in docs/benchmarks.md. The workers' answers are read over
 * HTTP/1.0, or over HTTP/1.1 with [http11] (a server that refuses HTTP/1.0); wrk speaks HTTP/1.1.
 */
abstract class SampleServerTests(
    private val name: String,
    private val jar: Path,
    private val startSeconds: Long = 60,
    private val jvmFlags: List<String> = emptyList(),
    private val http11: Boolean = false,
) : FunSpec() {
    /** A supervisor with two workers, both answering; [close] kills whatever is left, as does a failed start. */
    private inner class Server : AutoCloseable {
        val jvm = FixtureJvm(null, listOf("--port=0", "--workers=2"), jvmFlags = jvmFlags, jar = jar)
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
                check(System.nanoTime() < deadline) { "only workers $seen answered within ${startSeconds}s; ${log()}" }
                check(jvm.process.isAlive) { "the supervisor exited ${jvm.process.exitValue()}; ${log()}" }
                try {
                    pidIn(get(port, timeoutMillis = 5_000, http11 = http11))?.takeIf { it !in old }?.let { seen += it }
                } catch (e: IOException) {
                    Thread.sleep(20) // not bound yet, or the worker that took it is gone
                }
            }
            return seen
        }

        fun log(): String = "stdout:\n${jvm.stdout()}\nstderr:\n${jvm.stderr()}"

        override fun close() = jvm.close()
    }

    init {
        test("$name: shared socket, two SIGHUPs under wrk with no failed request, kill -9 costing only requests in flight, SIGTERM exit 0") {
            withClue("$jar") { Files.isRegularFile(jar) shouldBe true }
            val figures = mutableListOf<String>()
            val started = System.nanoTime()
            Server().use { server ->
                figures += "2 workers answering ${millisSince(started)} ms after start"
                val first = server.pids
                for ((round, keepAlive) in listOf(1 to false, 2 to true)) {
                    val mode = if (keepAlive) "keep-alive" else "a connection per request"
                    Wrk(server.port, connections = CONNECTIONS, threads = 1, keepAlive = keepAlive).use { wrk ->
                        Thread.sleep(SETTLE_MILLIS)
                        val hup = System.nanoTime()
                        server.jvm.signal(1)
                        eventually((2 * startSeconds).seconds) { Regex("rolling restart done").findAll(server.jvm.stdout() + server.jvm.stderr()).count() shouldBe round }
                        val took = millisSince(hup)
                        Thread.sleep(SETTLE_MILLIS)
                        val result = wrk.stop()
                        figures += "SIGHUP $round ($mode): $result, the rolling restart took $took ms"
                        withClue("SIGHUP $round ($mode): ${server.log()}") {
                            result.failures shouldBe 0
                            result.requests shouldBeGreaterThan 100
                        }
                    }
                }
                server.pids = server.awaitPids(2, first)
                server.pids shouldHaveSize 2
                first.forEach { withClue("old worker $it") { ProcFs.alive(it) shouldBe false } }

                val victim = server.pids.first()
                Wrk(server.port, connections = CONNECTIONS, threads = 1).use { wrk ->
                    Thread.sleep(SETTLE_MILLIS)
                    val killed = System.nanoTime()
                    kill(victim, 9)
                    val fresh = server.awaitPids(1, server.pids)
                    val back = millisSince(killed)
                    eventually(startSeconds.seconds) {
                        server.jvm.stderr() + server.jvm.stdout() shouldContain Regex("child \\d \\(pid $victim\\) killed by signal 9, restarting")
                    }
                    Thread.sleep(SETTLE_MILLIS)
                    val result = wrk.stop()
                    figures += "kill -9: $result, the replacement answered $back ms after the kill"
                    withClue("kill -9: ${server.log()}") {
                        result.connectErrors shouldBe 0
                        result.failures shouldBeLessThanOrEqual CONNECTIONS.toLong()
                        result.requests shouldBeGreaterThan 100
                    }
                    server.pids = server.pids - victim + fresh
                }
                val everyProcess = server.jvm.process.descendants().map { it.pid() }.toList().toSet() + server.pids
                withClue("processes under the supervisor: $everyProcess") { everyProcess.size shouldBe 2 } // the two workers, nothing else
                val term = System.nanoTime()
                server.jvm.signal(15)
                withClue(server.log()) { server.jvm.exitCode(60) shouldBe 0 }
                figures += "SIGTERM: every process gone, status 0, after ${millisSince(term)} ms"
                everyProcess.forEach { ProcFs.alive(it) shouldBe false }
            }
            println("contract $name: ${figures.joinToString("; ")}")
        }
    }

    private fun millisSince(nanos: Long): Long = (System.nanoTime() - nanos) / 1_000_000

    private companion object {
        /**
         * wrk's connections, on one thread: load enough that a request lost anywhere shows, while
         * the two cores of a CI machine still boot the replacement workers in seconds.
         */
        const val CONNECTIONS = 8

        /** Load before and after each event, so that it falls inside the measured run. */
        const val SETTLE_MILLIS = 500L
    }
}
