package dev.prefork.netty

import dev.prefork.bindSockets
import dev.prefork.testing.FixtureJvm
import dev.prefork.testing.ProcFs
import dev.prefork.testing.Wrk
import dev.prefork.testing.checkAcceptPacing
import dev.prefork.testing.get
import dev.prefork.testing.pidIn
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContain
import io.kotest.matchers.longs.shouldBeGreaterThan
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldNotContain
import io.netty.bootstrap.ServerBootstrap
import io.netty.buffer.Unpooled
import io.netty.channel.ChannelHandlerContext
import io.netty.channel.ChannelInboundHandlerAdapter
import io.netty.channel.EventLoopGroup
import io.netty.channel.epoll.EpollEventLoopGroup
import io.netty.channel.nio.NioEventLoopGroup
import java.net.BindException
import java.net.InetSocketAddress
import java.net.Socket
import java.nio.file.Files
import java.nio.file.Path
import kotlin.time.Duration.Companion.seconds

private const val FIXTURE = "dev.prefork.netty.fixtures.NettyFixtureKt"

/**
 * Event loops of Netty 4.1's API, which 4.2 keeps (deprecated): this module compiles against
 * its floor, Netty 4.1; the samples run it on 4.2.
 */
@Suppress("DEPRECATION")
internal fun eventLoops(epoll: Boolean, threads: Int): EventLoopGroup = if (epoll) EpollEventLoopGroup(threads) else NioEventLoopGroup(threads)

class PreforkNettyTest : FunSpec({
    fun fdOpen(fd: Int) = Files.exists(Path.of("/proc/self/fd/$fd"))

    test("Netty's bind succeeds on an adopted socket without binding again, and serves it (NIO and epoll)") {
        for (epoll in listOf(false, true)) {
            val socket = bindSockets(0, "127.0.0.1").single()
            val port = (socket.localAddress as InetSocketAddress).port
            val group = eventLoops(epoll, 1)
            try {
                val factory = if (epoll) PreforkNetty.epollServerChannelFactory(socket) else PreforkNetty.nioServerChannelFactory(socket)
                val channel = ServerBootstrap().group(group).channelFactory(factory)
                    .childHandler(object : ChannelInboundHandlerAdapter() {})
                    .bind("127.0.0.1", port).sync().channel()
                (channel.localAddress() as InetSocketAddress).port shouldBe port
                Socket("127.0.0.1", port).use { it.isConnected shouldBe true }
                shouldThrow<IllegalStateException> { factory.newChannel() }.message shouldContain "already made"
                channel.close().sync()
            } finally {
                group.shutdownGracefully(0, 1, java.util.concurrent.TimeUnit.SECONDS).sync()
                socket.close()
            }
        }
    }

    test("connectionLimit: at the limit the server accepts no more, and takes the next one when a connection closes (NIO and epoll)") {
        for (epoll in listOf(false, true)) {
            val socket = bindSockets(0, "127.0.0.1").single()
            val port = (socket.localAddress as InetSocketAddress).port
            val group = eventLoops(epoll, 1)
            /** A connection the server greets with a line as soon as it accepted it. */
            fun greeted(client: Socket, millis: Int): Boolean {
                client.soTimeout = millis
                return try {
                    client.getInputStream().read() == 'h'.code
                } catch (e: java.net.SocketTimeoutException) {
                    false
                }
            }
            // Connected before the server reads at all (the socket listens already): its first read finds all three queued.
            val first = Socket("127.0.0.1", port)
            val second = Socket("127.0.0.1", port)
            val third = Socket("127.0.0.1", port)
            try {
                val factory = if (epoll) PreforkNetty.epollServerChannelFactory(socket) else PreforkNetty.nioServerChannelFactory(socket)
                val channel = ServerBootstrap().group(group).channelFactory(factory)
                    .handler(PreforkNetty.connectionLimit(2))
                    .childHandler(object : ChannelInboundHandlerAdapter() {
                        override fun isSharable() = true

                        override fun channelActive(ctx: ChannelHandlerContext) {
                            ctx.writeAndFlush(Unpooled.copiedBuffer("hi\n", Charsets.US_ASCII))
                        }
                    })
                    .bind("127.0.0.1", port).sync().channel()
                try {
                    withClue(if (epoll) "epoll" else "nio") {
                        greeted(first, 5_000) shouldBe true
                        greeted(second, 5_000) shouldBe true
                        greeted(third, 500) shouldBe false
                        first.close()
                        greeted(third, 5_000) shouldBe true
                    }
                } finally {
                    listOf(first, second, third).forEach { it.close() }
                }
                channel.close().sync()
            } finally {
                listOf(first, second, third).forEach { it.close() }
                group.shutdownGracefully(0, 1, java.util.concurrent.TimeUnit.SECONDS).sync()
                socket.close()
            }
        }
        shouldThrow<IllegalArgumentException> { PreforkNetty.connectionLimit(0) }.message shouldBe "maxConnections <= 0: 0"
        shouldThrow<IllegalArgumentException> { AcceptPacer.maxHoldMillis("-1") }.message shouldBe
            "prefork.acceptPacer.maxHoldMillis is not a number of milliseconds >= 0: '-1'"
        AcceptPacer.maxHoldMillis("250") shouldBe 250
    }

    test("a bind to another port fails naming both addresses, and closes the channel") {
        val socket = bindSockets(0, "127.0.0.1").single()
        val port = (socket.localAddress as InetSocketAddress).port
        val group = eventLoops(epoll = false, 1)
        try {
            val future = ServerBootstrap().group(group).channelFactory(PreforkNetty.nioServerChannelFactory(socket))
                .childHandler(object : ChannelInboundHandlerAdapter() {})
                .bind("127.0.0.1", port + 1).await()
            val cause = future.cause() as BindException
            cause.message shouldContain "127.0.0.1:${port + 1}"
            cause.message shouldContain "127.0.0.1:$port"
        } finally {
            group.shutdownGracefully(0, 1, java.util.concurrent.TimeUnit.SECONDS).sync()
            socket.close()
        }
    }

    test("epoll takes the descriptor over: closing the JDK channel afterwards leaves Netty's descriptor open") {
        val socket = bindSockets(0, "127.0.0.1").single()
        val fd = FdHandover.take(socket)
        try {
            fdOpen(fd) shouldBe true
            socket.close()
            System.gc()
            fdOpen(fd) shouldBe true
            shouldThrow<IllegalStateException> { FdHandover.take(socket) }
        } finally {
            io.netty.channel.epoll.EpollServerSocketChannel(fd).unsafe().closeForcibly()
        }
        fdOpen(fd) shouldBe false
    }

    for ((transport, keepAlive) in listOf("nio" to false, "epoll" to false, "nio" to true, "epoll" to true)) {
        val mode = if (keepAlive) "keep-alive" else "a connection per request"
        test("2 workers on $transport: two SIGHUPs under wrk load ($mode) fail no request, and SIGTERM stops all") {
            FixtureJvm(FIXTURE, listOf(transport, "2", "20")).use { f ->
                val port = f.awaitLine(Regex("port (\\d+)")).groupValues[1].toInt()
                var pids = (0 until 2).map { f.awaitLine(Regex("worker \\d pid (\\d+) serving \\S+ on (\\w+)")) }.map {
                    it.groupValues[2] shouldBe if (transport == "epoll") "EpollServerSocketChannel" else "NioServerSocketChannel"
                    it.groupValues[1].toLong()
                }.toSet()
                Wrk(port, connections = 16, keepAlive = keepAlive).use { wrk ->
                    for (round in 1..2) {
                        Thread.sleep(1_000)
                        f.signal(1)
                        eventually(60.seconds) { Regex("rolling restart done").findAll(f.stderr()).count() shouldBe round }
                        val fresh = Regex("worker \\d pid (\\d+) serving").findAll(f.stdout()).map { it.groupValues[1].toLong() }.toList().takeLast(2).toSet()
                        (fresh intersect pids) shouldBe emptySet()
                        pids.forEach { ProcFs.alive(it) shouldBe false }
                        pids = fresh
                    }
                    Thread.sleep(1_000)
                    val result = wrk.stop()
                    println("netty $transport $mode: $result")
                    result.failures shouldBe 0
                    result.requests shouldBeGreaterThan 500
                }
                (0 until 5).forEach { pids shouldContain pidIn(get(port))!! }
                // every worker said ready itself, when Netty's bind completed (explicitReady)
                Regex("event child \\d \\(pid \\d+\\) ready").findAll(f.stdout()).count() shouldBe 6
                f.signal(15)
                f.exitCode(60) shouldBe 0
                pids.forEach { ProcFs.alive(it) shouldBe false }
                f.stderr() shouldNotContain "Exception"
            }
        }
    }

    for (transport in listOf("epoll", "nio")) {
        test("2 workers on $transport: a worker whose CPUs are busy with requests leaves new connections to the other, and takes them again after the longest hold") {
            FixtureJvm(FIXTURE, listOf(transport, "2", "0"), jvmFlags = listOf("-Dprefork.acceptPacer.maxHoldMillis=3000")).use { f ->
                val port = f.awaitLine(Regex("port (\\d+)")).groupValues[1].toInt()
                val processors = (0 until 2).map { f.awaitLine(Regex("worker \\d pid (\\d+) serving .*, (\\d+) processors")) }
                    .associate { it.groupValues[1].toLong() to it.groupValues[2].toInt() }
                checkAcceptPacing(port, processors)
                f.signal(15)
                f.exitCode(60) shouldBe 0
                f.stderr() shouldNotContain "Exception"
            }
        }
    }
})
