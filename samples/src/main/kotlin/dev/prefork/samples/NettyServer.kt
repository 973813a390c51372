@file:JvmName("NettyServerKt")

package dev.prefork.samples

import dev.prefork.ForkOptions
import dev.prefork.WorkerEvent
import dev.prefork.bindSockets
import dev.prefork.cpuCount
import dev.prefork.forkProcesses
import dev.prefork.netty.PreforkNetty
import dev.prefork.taskId
import io.netty.bootstrap.ServerBootstrap
import io.netty.buffer.Unpooled
import io.netty.channel.ChannelFutureListener
import io.netty.channel.ChannelHandlerContext
import io.netty.channel.ChannelInitializer
import io.netty.channel.MultiThreadIoEventLoopGroup
import io.netty.channel.SimpleChannelInboundHandler
import io.netty.channel.nio.NioIoHandler
import io.netty.channel.socket.SocketChannel
import io.netty.handler.codec.http.DefaultFullHttpResponse
import io.netty.handler.codec.http.FullHttpRequest
import io.netty.handler.codec.http.HttpHeaderNames
import io.netty.handler.codec.http.HttpHeaderValues
import io.netty.handler.codec.http.HttpObjectAggregator
import io.netty.handler.codec.http.HttpResponseStatus
import io.netty.handler.codec.http.HttpServerCodec
import io.netty.handler.codec.http.HttpUtil
import kotlinx.coroutines.runBlocking
import java.net.InetSocketAddress
import kotlin.system.exitProcess

/**
 * prefork under plain Netty: the socket is bound once by the supervisor, and every worker's
 * `ServerBootstrap` serves it through prefork-netty's channel factory, so all workers share
 * one accept queue; Netty's `bind` binds nothing.
 *
 * ```
 * java -cp prefork-samples.jar dev.prefork.samples.NettyServerKt [port] [--workers N]
 * ```
 *
 * Port 8889 and [cpuCount] workers by default. SIGHUP to the supervisor restarts the workers
 * one at a time; SIGTERM or Ctrl-C stops them. Either way each worker stops accepting, the
 * drain handler lets its connections finish (`Connection: close` on the answers still to come),
 * and the JVM exits once they are closed: a rolling restart loses no request.
 */
fun main(args: Array<String>) {
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
    val bound = (socket.localAddress as InetSocketAddress).port
    if (taskId() == null) {
        val pid = ProcessHandle.current().pid()
        println("netty + prefork: $workers workers on http://127.0.0.1:$bound, supervisor pid $pid")
        println("  curl http://127.0.0.1:$bound/    kill -HUP $pid (rolling restart)    Ctrl-C to stop")
    }
    val options = ForkOptions.builder()
        .numProcesses(workers)
        .maxRestarts(20)
        .explicitReady(true) // ready when Netty's bind completes: prefork-netty says it
        .listener { if (it is WorkerEvent.Started) println("[supervisor] netty worker ${it.id} started, pid ${it.pid}") }
        .build()
    val id = runBlocking { forkProcesses(options) } // never returns in the supervisor
    val pid = ProcessHandle.current().pid()
    val io = NioIoHandler.newFactory()
    ServerBootstrap()
        .group(MultiThreadIoEventLoopGroup(1, io), MultiThreadIoEventLoopGroup(2, io))
        .channelFactory(PreforkNetty.nioServerChannelFactory(socket))
        .childHandler(object : ChannelInitializer<SocketChannel>() {
            override fun initChannel(ch: SocketChannel) {
                ch.pipeline().addLast(HttpServerCodec(), PreforkNetty.httpDrainHandler(), HttpObjectAggregator(64 * 1024), Hello(id, pid))
            }
        })
        .bind("127.0.0.1", bound).sync()
    println("[netty worker $id] pid $pid serving http://127.0.0.1:$bound")
}

private fun usage(): Nothing {
    System.err.println("usage: NettyServerKt [port] [--workers N]")
    exitProcess(2)
}

private class Hello(private val id: Int, private val pid: Long) : SimpleChannelInboundHandler<FullHttpRequest>() {
    override fun channelRead0(ctx: ChannelHandlerContext, request: FullHttpRequest) {
        val body = Unpooled.copiedBuffer("hello from netty worker $id (pid $pid)\n", Charsets.UTF_8)
        val response = DefaultFullHttpResponse(request.protocolVersion(), HttpResponseStatus.OK, body)
        response.headers()
            .set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.TEXT_PLAIN)
            .setInt(HttpHeaderNames.CONTENT_LENGTH, body.readableBytes())
        val keepAlive = HttpUtil.isKeepAlive(request)
        HttpUtil.setKeepAlive(response, keepAlive)
        val written = ctx.writeAndFlush(response)
        if (!keepAlive) written.addListener(ChannelFutureListener.CLOSE)
    }

    override fun exceptionCaught(ctx: ChannelHandlerContext, cause: Throwable) {
        ctx.close() // a client that went away
    }
}
