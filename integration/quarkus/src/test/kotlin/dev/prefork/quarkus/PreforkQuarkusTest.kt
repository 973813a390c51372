package dev.prefork.quarkus

import dev.prefork.testing.FixtureJvm
import dev.prefork.testing.ProcFs
import dev.prefork.testing.get
import dev.prefork.testing.kill
import dev.prefork.testing.pidIn
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldNotContain
import java.io.IOException
import java.net.Socket
import kotlin.time.Duration.Companion.seconds

private const val FIXTURE = "dev.prefork.quarkus.fixtures.VertxFixtureKt"

/**
 * prefork-quarkus on the Vert.x it is compiled against, 4.5.0, in real workers under a
 * supervisor; Quarkus 3.33 runs the samples' contract (samples/tests).
 */
class PreforkQuarkusTest : FunSpec({
    for (mode in listOf("h2c", "http1")) {
        test("Vert.x 4.5.0 ($mode): both workers serve the shared socket and bind nothing; after a worker's SIGTERM an answer on a kept-alive connection says Connection: close and the worker exits once the connection closed") {
            FixtureJvm(FIXTURE, listOf(mode)).use { f ->
                val log = { "stdout:\n${f.stdout()}\nstderr:\n${f.stderr()}" }
                val port = f.awaitLine(Regex("port (\\d+)"), 60).groupValues[1].toInt()
                val pids = mutableSetOf<Long>()
                val deadline = System.nanoTime() + 60_000_000_000
                while (pids.size < 2) {
                    check(System.nanoTime() < deadline && f.process.isAlive) { "workers $pids answered; ${log()}" }
                    try {
                        pidIn(get(port, timeoutMillis = 5_000))?.let { pids += it }
                    } catch (e: IOException) {
                        Thread.sleep(100)
                    }
                }
                withClue(log()) {
                    for (pid in pids) ProcFs.listeningPorts(pid) shouldBe setOf(port)
                    eventually(10.seconds) {
                        Regex("a server on a port of its own: Vert.x serves prefork's socket bound to /127.0.0.1:$port already")
                            .findAll(f.stdout()).count() shouldBe 2
                    }
                }

                Socket("127.0.0.1", port).use { connection ->
                    connection.soTimeout = 10_000
                    val first = exchange(connection, "/")
                    withClue(first) {
                        first shouldContain "httpEncoder, prefork-drain"
                        first.lowercase() shouldNotContain "connection: close"
                    }
                    val worker = pidIn(first)!!
                    kill(worker, 15)
                    Thread.sleep(300)
                    withClue("worker $worker waits for the connection it holds") { ProcFs.alive(worker) shouldBe true }
                    val second = exchange(connection, "/slow")
                    withClue(second) {
                        pidIn(second) shouldBe worker
                        second.lowercase() shouldContain "connection: close"
                    }
                    withClue("the connection closes after the answer that said so") { connection.getInputStream().read() shouldBe -1 }
                    eventually(10.seconds) { withClue("worker $worker exits once drained") { ProcFs.alive(worker) shouldBe false } }
                }

                f.signal(15)
                withClue(log()) { f.exitCode(60) shouldBe 0 }
                f.stdout() + f.stderr() shouldNotContain "already in use"
            }
        }
    }
})

/** One HTTP/1.1 request on [connection], kept alive; the answer's head and body. */
private fun exchange(connection: Socket, path: String): String {
    connection.getOutputStream().write("GET $path HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".toByteArray())
    val input = connection.getInputStream()
    val head = StringBuilder()
    while (!head.endsWith("\r\n\r\n")) {
        val b = input.read()
        if (b < 0) throw IOException("connection closed after \"$head\"")
        head.append(b.toChar())
    }
    val length = Regex("(?i)content-length: *(\\d+)").find(head)!!.groupValues[1].toInt()
    return head.toString() + String(input.readNBytes(length))
}
