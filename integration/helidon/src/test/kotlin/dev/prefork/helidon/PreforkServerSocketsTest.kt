package dev.prefork.helidon

import dev.prefork.testing.FixtureJvm
import dev.prefork.testing.ProcFs
import dev.prefork.testing.get
import dev.prefork.testing.pidIn
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldNotContain
import java.io.IOException

private const val FIXTURE = "dev.prefork.helidon.fixtures.ServerSocketsFixtureKt"
private const val ADD_OPENS = "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED"

/** The provider is JVM-wide and chosen once: every case runs in a fresh JVM. */
class PreforkServerSocketsTest : FunSpec({
    /** `<case>: <outcome>` lines of a fixture run to its end. */
    fun outcomes(mode: String, jvmFlags: List<String> = listOf(ADD_OPENS)): Map<String, String> =
        FixtureJvm(FIXTURE, listOf(mode), jvmFlags = jvmFlags).use { f ->
            f.exitCode(30) shouldBe 0
            f.stdout().lines().filter { ": " in it }.associate { it.substringBefore(": ") to it.substringAfter(": ") }
        }

    test("2 workers each open and bind a ServerSocketChannel of their own: both serve the shared socket, and SIGTERM ends accept only when the server closes its channel") {
        FixtureJvm(FIXTURE, listOf("serve", "2"), jvmFlags = listOf(ADD_OPENS)).use { f ->
            val port = f.awaitLine(Regex("port (\\d+)")).groupValues[1].toInt()
            val serving = (0 until 2).map {
                f.awaitLine(Regex("worker \\d pid (\\d+) serving (\\S+) on (\\w+), the adopted socket's provider (\\w+), the inherited channel (\\S+)"))
            }
            for (line in serving) {
                line.groupValues[2] shouldBe "/127.0.0.1:$port"
                line.groupValues[3] shouldBe "OfferedServerSocketChannel"
                // prefork's SocketHandoff adopts the socket with the JVM's provider, which is ours
                line.groupValues[4] shouldBe "PreforkSelectorProvider"
                // the JDK's own System.inheritedChannel(), through ours
                line.groupValues[5] shouldBe "/127.0.0.1:$port"
            }
            val pids = serving.map { it.groupValues[1].toLong() }.toSet()
            val answered = mutableSetOf<Long>()
            val deadline = System.nanoTime() + 30_000_000_000
            while (answered != pids) {
                check(System.nanoTime() < deadline) { "only $answered of $pids answered; ${f.stdout()}${f.stderr()}" }
                try {
                    answered += pidIn(get(port, timeoutMillis = 5_000))!!
                } catch (e: IOException) {
                    Thread.sleep(20)
                }
            }
            // one socket in the supervisor and the workers, bound once: nothing else listens
            pids.forEach { ProcFs.listeningPorts(it) shouldBe setOf(port) }

            f.signal(15)
            f.exitCode(60) shouldBe 0
            pids.forEach { ProcFs.alive(it) shouldBe false }
            val out = f.stdout()
            for (id in 0 until 2) {
                val stopped = out.indexOf("worker $id stopped accepting")
                val drained = out.indexOf("worker $id drained")
                val ended = out.indexOf("worker $id accept ended: AsynchronousCloseException, worker stopping: true")
                (stopped in 0 until drained && drained < ended) shouldBe true
            }
            out shouldNotContain "accept failed"
            f.stderr() shouldNotContain "Exception"
        }
    }

    test("bind checks the port, accept is the socket's, and a closed socket leaves accept waiting for the channel's close") {
        val outcome = outcomes("checks")
        outcome["install twice"] shouldBe "ok kotlin.Unit"
        outcome["open with nothing offered"] shouldBe "ok ServerSocketChannelImpl"
        outcome["offer twice"]!! shouldContain "IllegalStateException: a socket offered before"
        outcome["offered"] shouldBe "ok OfferedServerSocketChannel, local address before bind null"
        outcome["accept before bind"] shouldBe "NotYetBoundException: null"
        outcome["bind another port"]!!.let {
            it shouldContain "BindException: asked to bind /127.0.0.1:"
            Regex("127\\.0\\.0\\.1:\\d+").findAll(it).count() shouldBe 2
        }
        outcome["bind port 0"] shouldBe "ok true"
        outcome["bind again"] shouldBe "AlreadyBoundException: null"
        outcome["open after the offer was taken"] shouldBe "ok ServerSocketChannelImpl"
        outcome["accept"] shouldBe "ok true"
        outcome["accept after the socket was closed, 0.5 s on"] shouldBe "ok true, channel open true"
        outcome["accept once the channel is closed"] shouldBe "ok AsynchronousCloseException"
        outcome["offer a closed socket"]!! shouldContain "IllegalArgumentException: socket is closed"
        outcome["interrupted accept"] shouldBe "ok ClosedByInterruptException, channel open false"
    }

    test("install after the JVM chose its provider fails naming it, and offer without install fails") {
        val outcome = outcomes("late")
        outcome["install after NIO"]!! shouldContain "IllegalStateException: the JVM chose its SelectorProvider (sun.nio.ch."
        outcome["install after NIO"]!! shouldContain "-Djava.nio.channels.spi.SelectorProvider=dev.prefork.helidon.PreforkSelectorProvider"
        outcome["offer without install"]!! shouldContain "call PreforkServerSockets.install() first"
    }

    test("without --add-opens install fails naming the flag, and leaves the JDK's NIO working") {
        val outcome = outcomes("install", jvmFlags = emptyList())
        outcome["install"]!! shouldContain "IllegalStateException: prefork-helidon cannot reach the JDK's own SelectorProvider"
        outcome["install"]!! shouldContain "--add-opens java.base/sun.nio.ch=ALL-UNNAMED"
        outcome["open after install"] shouldBe "ok ServerSocketChannelImpl from EPollSelectorProvider"
    }
})
