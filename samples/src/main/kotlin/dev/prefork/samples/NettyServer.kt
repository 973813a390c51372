@file:JvmName("NettyServerKt")

package dev.prefork.samples

import dev.prefork.ForkOptions
import dev.prefork.WorkerEvent
import dev.prefork.bindSockets
import dev.prefork.cpuCount
import dev.prefork.forkProcesses
import dev.prefork.taskId
import io.netty.bootstrap.ServerBootstrap
import io.netty.buffer.Unpooled
import io.netty.channel.Channel
import io.netty.channel.ChannelFutureListener
import io.netty.channel.ChannelHandlerContext
import io.netty.channel.ChannelInboundHandlerAdapter
import io.netty.channel.ChannelInitializer
import io.netty.channel.MultiThreadIoEventLoopGroup
import io.netty.channel.SimpleChannelInboundHandler
import io.netty.channel.group.DefaultChannelGroup
import io.netty.channel.nio.NioIoHandler
import io.netty.channel.socket.SocketChannel
import io.netty.channel.socket.nio.NioServerSocketChannel
import io.netty.handler.codec.http.DefaultFullHttpResponse
import io.netty.handler.codec.http.FullHttpRequest
import io.netty.handler.codec.http.HttpHeaderNames
import io.netty.handler.codec.http.HttpHeaderValues
import io.netty.handler.codec.http.HttpObjectAggregator
import io.netty.handler.codec.http.HttpResponseStatus
import io.netty.handler.codec.http.HttpServerCodec
import io.netty.handler.codec.http.HttpUtil
import io.netty.util.concurrent.GlobalEventExecutor
import kotlinx.coroutines.runBlocking
import java.nio.channels.ServerSocketChannel
import java.util.concurrent.TimeUnit
import kotlin.system.exitProcess

/**
 * prefork under Netty: the socket is bound once by the supervisor, and every worker wraps its
 * inherited copy in Netty's `NioServerSocketChannel`, so all workers share one accept queue.
 *
 * ```
 * java -cp prefork-samples.jar dev.prefork.samples.NettyServerKt [port] [--workers N]
 * ```
 *
 * Port 8889 and [cpuCount] workers by default. SIGHUP to the supervisor restarts the workers
 * one at a time; SIGTERM or Ctrl-C stops them. Either way each worker drains (see
 * [NettyWorker.drain]), so a rolling restart loses no request.
 */
fun main(args: Array<String>) {
    System.setProperty("kotlin-logging.logStartupMessage", "false")
    System.setProperty("org.slf4j.simpleLogger.showThreadName", "false")
    var port = 8889
    var workers = cpuCount()
    val rest = args.iterator()
    for (arg in rest) {
        when {
            arg == "--workers" && rest.hasNext() -> workers = rest.next().toIntOrNull() ?: usage()
            arg.toIntOrNull() != null -> port = arg.toInt()
            else -> usage()
        }
    }
    // Bound here in the supervisor; in a worker, this same call returns the supervisor's socket.
    val socket = bindSockets(port, "127.0.0.1").single()
    if (taskId() == null) {
        val pid = ProcessHandle.current().pid()
        println("netty + prefork: $workers workers on http://127.0.0.1:$port, supervisor pid $pid")
        println("  curl http://127.0.0.1:$port/    kill -HUP $pid (rolling restart)    Ctrl-C to stop")
    }
    val options = ForkOptions.builder()
        .numProcesses(workers)
        .maxRestarts(20)
        // prefork logs every exit itself; the listener reports the starts.
        .listener { if (it is WorkerEvent.Started) println("[supervisor] netty worker ${it.id} started, pid ${it.pid}") }
        .build()
    val id = runBlocking { forkProcesses(options) } // never returns in the supervisor
    NettyWorker(id, socket).serve()
}

private fun usage(): Nothing {
    System.err.println("usage: NettyServerKt [port] [--workers N]")
    exitProcess(2)
}

/** One worker: Netty serving HTTP on the socket inherited from the supervisor. */
private class NettyWorker(private val id: Int, private val socket: ServerSocketChannel) {
    private val pid = ProcessHandle.current().pid()
    private val group = MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory())
    private val connections = DefaultChannelGroup(GlobalEventExecutor.INSTANCE)

    @Volatile
    var draining = false

    /** Serves until a drain closed the listening channel. */
    fun serve() {
        // Netty adopts the channel as it is (already bound; it makes it non-blocking). So
        // `register()`, not `bind()`: registering an active channel starts accepting at once.
        val server = ServerBootstrap()
            .group(group)
            .channelFactory { NioServerSocketChannel(socket) }
            // Runs before the acceptor, on the listening channel's thread: every connection is
            // in the group before a close of the listening channel completes.
            .handler(object : ChannelInboundHandlerAdapter() {
                override fun channelRead(ctx: ChannelHandlerContext, msg: Any) {
                    connections.add(msg as Channel)
                    ctx.fireChannelRead(msg)
                }
            })
            .childHandler(object : ChannelInitializer<SocketChannel>() {
                override fun initChannel(ch: SocketChannel) {
                    ch.pipeline().addLast(HttpServerCodec(), HttpObjectAggregator(64 * 1024), HelloHandler(this@NettyWorker))
                }
            })
            .register().sync().channel()
        Runtime.getRuntime().addShutdownHook(Thread({ drain(server) }, "netty-drain"))
        println("[netty worker $id] pid $pid serving ${socket.localAddress}")
        server.closeFuture().sync()
    }

    /**
     * On SIGTERM/SIGINT: closing this process's handle on the listening socket stops accepting
     * here only; the other workers keep the shared accept queue. `shutdownGracefully` alone is
     * not enough: it closes every open connection at once, requests in flight included. So the
     * connections are let finish first: idle keep-alive ones are closed, the others get their
     * answer with `Connection: close`.
     */
    private fun drain(server: Channel) {
        server.close().syncUninterruptibly()
        draining = true
        connections.filter { it.isRegistered }.forEach { it.pipeline().fireUserEventTriggered(Drain) }
        if (!connections.newCloseFuture().await(10, TimeUnit.SECONDS)) {
            println("[netty worker $id] ${connections.size} connections still open after 10 s, closing them")
        }
        group.shutdownGracefully().syncUninterruptibly()
        println("[netty worker $id] pid $pid drained, exiting")
    }

    /** Told to each connection when the worker starts draining. */
    object Drain

    private class HelloHandler(private val worker: NettyWorker) : SimpleChannelInboundHandler<FullHttpRequest>() {
        private var served = 0

        override fun channelRead0(ctx: ChannelHandlerContext, request: FullHttpRequest) {
            val text = "hello from netty worker ${worker.id} (pid ${worker.pid})\n"
            val body = Unpooled.copiedBuffer(text, Charsets.UTF_8)
            val response = DefaultFullHttpResponse(request.protocolVersion(), HttpResponseStatus.OK, body)
            response.headers()
                .set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.TEXT_PLAIN)
                .setInt(HttpHeaderNames.CONTENT_LENGTH, body.readableBytes())
            val keepAlive = HttpUtil.isKeepAlive(request) && !worker.draining
            HttpUtil.setKeepAlive(response, keepAlive)
            served++
            val written = ctx.writeAndFlush(response)
            if (!keepAlive) written.addListener(ChannelFutureListener.CLOSE)
        }

        override fun userEventTriggered(ctx: ChannelHandlerContext, event: Any) {
            if (event !== Drain) return super.userEventTriggered(ctx, event)
            // A connection that was answered already is idle keep-alive: close it (HTTP clients
            // retry a request that meets such a close). A fresh one is waiting for its request.
            if (served > 0) ctx.close()
        }

        override fun exceptionCaught(ctx: ChannelHandlerContext, cause: Throwable) {
            println("[netty worker ${worker.id}] ${cause.message}")
            ctx.close()
        }
    }
}
