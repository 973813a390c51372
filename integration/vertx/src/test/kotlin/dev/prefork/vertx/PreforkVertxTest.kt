package dev.prefork.vertx

import dev.prefork.bindSockets
import dev.prefork.testing.FixtureJvm
import dev.prefork.testing.ProcFs
import dev.prefork.testing.Wrk
import dev.prefork.testing.get
import dev.prefork.testing.pidIn
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContain
import io.kotest.matchers.collections.shouldNotContain
import io.kotest.matchers.longs.shouldBeGreaterThan
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldNotContain
import io.kotest.matchers.string.shouldStartWith
import io.kotest.matchers.types.shouldBeInstanceOf
import io.vertx.core.DeploymentOptions
import io.vertx.core.Future
import io.vertx.core.VerticleBase
import io.vertx.core.Vertx
import io.vertx.core.http.HttpServer
import io.vertx.core.net.impl.ConnectionBase
import io.vertx.core.transport.Transport
import java.io.BufferedInputStream
import java.net.BindException
import java.net.InetSocketAddress
import java.net.Socket
import java.net.SocketTimeoutException
import java.nio.channels.ServerSocketChannel
import java.util.concurrent.ExecutionException
import java.util.concurrent.atomic.AtomicInteger
import java.util.function.Supplier
import kotlin.time.Duration.Companion.seconds

private const val FIXTURE = "dev.prefork.vertx.fixtures.VertxFixtureKt"

/** One HTTP/1.1 connection, kept alive: [get] sends a request on it and reads the answer's body. */
private class KeepAliveClient(port: Int) : AutoCloseable {
    private val socket = Socket("127.0.0.1", port)
    private val input = BufferedInputStream(socket.getInputStream())

    fun send() = socket.getOutputStream().write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".toByteArray())

    /** The body of the next answer, read within [timeoutMillis] (the connection stays usable after a timeout). */
    fun read(timeoutMillis: Int = 5_000): String {
        socket.soTimeout = timeoutMillis
        val head = StringBuilder()
        while (!head.endsWith("\r\n\r\n")) head.append(input.read().also { check(it >= 0) { "closed after: $head" } }.toChar())
        head.toString() shouldStartWith "HTTP/1.1 200"
        val length = Regex("content-length: (\\d+)", RegexOption.IGNORE_CASE).find(head)!!.groupValues[1].toInt()
        return String(input.readNBytes(length))
    }

    fun get(): String {
        send()
        return read()
    }

    override fun close() = socket.close()
}

private fun <T> io.vertx.core.Future<T>.value(): T = toCompletionStage().toCompletableFuture().get()

/** A Vert.x instance on [base] with prefork's transport over a fresh socket, its socket's port, and an HTTP server listening there answering [answer]. */
private fun withServer(base: Transport, maxConnections: Int = Int.MAX_VALUE, answer: (io.vertx.core.http.HttpServerRequest) -> String, block: (Vertx, Int, HttpServer) -> Unit) {
    val socket = bindSockets(0, "127.0.0.1").single()
    val port = (socket.localAddress as InetSocketAddress).port
    val vertx = Vertx.builder().withTransport(PreforkVertx.transport(socket, base, maxConnections)).build()
    try {
        val server = vertx.createHttpServer().requestHandler { it.response().end(answer(it)) }.listen(port, "127.0.0.1").value()
        block(vertx, port, server)
    } finally {
        vertx.close().value()
        socket.close()
    }
}

class PreforkVertxTest : FunSpec({
    for (base in listOf(Transport.NIO, Transport.EPOLL)) {
        test("${base.name()}: the first server serves the socket without binding again, with the drain handler after Vert.x's HTTP/1.x codec; a later server binds as usual") {
            // Vert.x's connection internals, to read the pipeline: test code only.
            withServer(base, answer = { (it.connection() as ConnectionBase).channelHandlerContext().pipeline().names().joinToString() }) { vertx, port, server ->
                server.actualPort() shouldBe port
                KeepAliveClient(port).use { client ->
                    client.get() // with h2c (Vert.x's default) the codec comes with the first request
                    val names = client.get().split(", ")
                    withClue(names) {
                        names[names.indexOf("httpEncoder") + 1] shouldBe "prefork-http-drain"
                        names shouldNotContain "prefork-http-drain-placer"
                    }
                }
                val other = vertx.createHttpServer().requestHandler { it.response().end("other") }.listen(0, "127.0.0.1").value()
                other.actualPort() shouldNotBe port
                get(other.actualPort()) shouldBe "other"
            }
        }
    }

    test("verticle instances listening on the socket's port share its server, each answering connections of its own") {
        val socket = bindSockets(0, "127.0.0.1").single()
        val port = (socket.localAddress as InetSocketAddress).port
        val vertx = Vertx.builder().withTransport(PreforkVertx.transport(socket)).build()
        try {
            val instance = AtomicInteger()
            vertx.deployVerticle(
                Supplier {
                    val id = instance.getAndIncrement()
                    object : VerticleBase() {
                        override fun start(): Future<*> = vertx.createHttpServer().requestHandler { it.response().end("instance $id") }.listen(port, "127.0.0.1")
                    }
                },
                DeploymentOptions().setInstances(2),
            ).value()
            (1..10).map { get(port) }.toSet() shouldBe setOf("instance 0", "instance 1")
        } finally {
            vertx.close().value()
            socket.close()
        }
    }

    test("a server listening on another port first fails, naming both addresses") {
        val socket = bindSockets(0, "127.0.0.1").single()
        val port = (socket.localAddress as InetSocketAddress).port
        val vertx = Vertx.builder().withTransport(PreforkVertx.transport(socket)).build()
        try {
            val cause = shouldThrow<ExecutionException> {
                vertx.createHttpServer().requestHandler { it.response().end() }.listen(port + 1, "127.0.0.1").value()
            }.cause.shouldBeInstanceOf<BindException>()
            cause.message shouldContain "127.0.0.1:${port + 1}"
            cause.message shouldContain "127.0.0.1:$port"
        } finally {
            vertx.close().value()
            socket.close()
        }
    }

    test("maxConnections: at the limit the server leaves the next connection queued, and takes it when one closes") {
        withServer(Transport.NIO, maxConnections = 1, answer = { "hello" }) { _, port, _ ->
            val first = KeepAliveClient(port)
            first.get() shouldBe "hello"
            KeepAliveClient(port).use { second ->
                second.send()
                shouldThrow<SocketTimeoutException> { second.read(timeoutMillis = 500) }
                first.close()
                second.read() shouldBe "hello"
            }
        }
    }

    test("a transport prefork cannot serve its socket on, a closed socket and a bad limit are refused, naming them") {
        val socket = bindSockets(0, "127.0.0.1").single()
        val uring = object : Transport {
            override fun name() = "io_uring"

            override fun available() = true

            override fun unavailabilityCause(): Throwable? = null

            override fun implementation() = Transport.NIO.implementation()
        }
        shouldThrow<IllegalArgumentException> { PreforkVertx.transport(socket, uring) }.message shouldBe
            "Vert.x transport io_uring: prefork serves its socket on Vert.x's nio or epoll transport"
        shouldThrow<IllegalArgumentException> { PreforkVertx.transport(socket, Transport.NIO, 0) }.message shouldBe "maxConnections <= 0: 0"
        socket.close()
        shouldThrow<IllegalArgumentException> { PreforkVertx.transport(socket) }.message shouldContain "socket is closed"
        shouldThrow<IllegalArgumentException> { PreforkVertx.transport(ServerSocketChannel.open()) }.message shouldContain "socket is not bound"
    }

    for (transport in listOf("nio", "epoll")) {
        test("2 workers on $transport: two SIGHUPs under wrk load (keep-alive) fail no request, and SIGTERM stops all") {
            FixtureJvm(FIXTURE, listOf(transport, "2")).use { f ->
                val port = f.awaitLine(Regex("port (\\d+)")).groupValues[1].toInt()
                var pids = (0 until 2).map { f.awaitLine(Regex("worker \\d pid (\\d+) serving $port")).groupValues[1].toLong() }.toSet()
                Wrk(port, connections = 16, keepAlive = true).use { wrk ->
                    for (round in 1..2) {
                        Thread.sleep(1_000)
                        f.signal(1)
                        eventually(60.seconds) { Regex("rolling restart done").findAll(f.stderr()).count() shouldBe round }
                        val fresh = Regex("worker \\d pid (\\d+) serving").findAll(f.stdout()).map { it.groupValues[1].toLong() }.toList().takeLast(2).toSet()
                        (fresh intersect pids) shouldBe emptySet()
                        eventually(10.seconds) { pids.forEach { ProcFs.alive(it) shouldBe false } }
                        pids = fresh
                    }
                    Thread.sleep(1_000)
                    val result = wrk.stop()
                    println("vert.x $transport keep-alive: $result")
                    result.failures shouldBe 0
                    result.requests shouldBeGreaterThan 500
                }
                (0 until 5).forEach { pids shouldContain pidIn(get(port))!! }
                // every worker said ready itself, when Vert.x's listen succeeded (explicitReady)
                Regex("event child \\d \\(pid \\d+\\) ready").findAll(f.stdout()).count() shouldBe 6
                f.signal(15)
                f.exitCode(60) shouldBe 0
                pids.forEach { ProcFs.alive(it) shouldBe false }
                f.stderr() shouldNotContain "Exception"
            }
        }
    }
})
