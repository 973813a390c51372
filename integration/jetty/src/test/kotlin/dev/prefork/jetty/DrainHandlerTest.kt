package dev.prefork.jetty

import dev.prefork.bindSockets
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.longs.shouldBeGreaterThanOrEqual
import io.kotest.matchers.longs.shouldBeLessThan
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldNotContain
import org.eclipse.jetty.server.Handler
import org.eclipse.jetty.server.Request
import org.eclipse.jetty.server.Response
import org.eclipse.jetty.server.Server
import org.eclipse.jetty.util.Callback
import java.net.InetSocketAddress
import java.net.Socket
import java.nio.ByteBuffer
import java.util.concurrent.CompletableFuture

/** DrainHandler and PreforkJetty.connector in this JVM (not a worker: the Worker calls are no-ops here). */
class DrainHandlerTest : FunSpec({
    /** Answers after the number of milliseconds in the path: `/300`. */
    val slow = object : Handler.Abstract() {
        override fun handle(request: Request, response: Response, callback: Callback): Boolean {
            Thread.sleep(Request.getPathInContext(request).drop(1).toLongOrNull() ?: 0)
            response.write(true, ByteBuffer.wrap("ok\n".toByteArray()), callback)
            return true
        }
    }

    /** One HTTP/1.1 request on a fresh connection; the response head and body as text. */
    fun request(port: Int, path: String): String = Socket("127.0.0.1", port).use { socket ->
        socket.soTimeout = 10_000
        socket.getOutputStream().write("GET $path HTTP/1.1\r\nHost: x\r\n\r\n".toByteArray())
        val input = socket.getInputStream().bufferedReader()
        val head = generateSequence { input.readLine() }.takeWhile { it.isNotEmpty() }.joinToString("\n")
        head + "\n" + input.readLine()
    }

    /** A started server with [slow] behind PreforkJetty's connector on a fresh socket, stopped after [body]. */
    fun withServer(body: (port: Int, drain: DrainHandler) -> Unit) {
        val socket = bindSockets(0, "127.0.0.1").single()
        val server = Server()
        server.handler = slow
        PreforkJetty.connector(server, socket)
        server.start()
        try {
            body((socket.localAddress as InetSocketAddress).port, server.handler as DrainHandler)
        } finally {
            server.stop()
        }
    }

    test("drain waits for the requests in flight, then every answer says Connection: close") {
        withServer { port, drain ->
            request(port, "/0") shouldNotContain "Connection: close"
            val inFlight = CompletableFuture.supplyAsync { request(port, "/600") }
            Thread.sleep(150)
            drain.inFlight() shouldBe 1
            val started = System.nanoTime()
            drain.drain(5_000)
            (System.nanoTime() - started) / 1_000_000 shouldBeGreaterThanOrEqual 300L
            inFlight.isDone shouldBe true
            inFlight.get() shouldContain "ok"
            request(port, "/0") shouldContain "Connection: close"
        }
    }

    test("drain gives up on a request that outlasts its timeout") {
        withServer { port, drain ->
            CompletableFuture.runAsync { runCatching { request(port, "/3000") } }
            Thread.sleep(150)
            val started = System.nanoTime()
            drain.drain(200)
            (System.nanoTime() - started) / 1_000_000 shouldBeLessThan 1_000L
        }
    }
})
