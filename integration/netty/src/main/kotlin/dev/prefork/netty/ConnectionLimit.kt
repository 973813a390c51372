package dev.prefork.netty

import io.netty.channel.Channel
import io.netty.channel.ChannelFutureListener
import io.netty.channel.ChannelHandlerContext
import io.netty.channel.ChannelInboundHandlerAdapter

/**
 * At most [max] connections open at once on one server channel: when [max] are open the
 * channel stops reading (accepting), and it reads again when one of them closes. On a socket
 * shared by several workers the connections meanwhile wait in the kernel's accept queue, where
 * a worker with room takes them: the shared queue then balances load by each worker's
 * capacity, as the accept loop of a single-threaded pre-fork worker (gunicorn's sync worker)
 * does. Without a limit an idle event loop accepts whatever arrives, however busy its worker's
 * request threads are, and Linux wakes the waiters on a shared socket unevenly.
 *
 * The limit is never overshot: the native transports hand each accepted connection on before
 * they accept the next, and stop once reading is off; NIO accepts a batch before it hands any
 * on, so on NIO one connection is accepted per read. The count is kept on the server
 * channel's event loop.
 */
internal class ConnectionLimit(private val max: Int) : ChannelInboundHandlerAdapter() {
    private var open = 0

    override fun handlerAdded(ctx: ChannelHandlerContext) {
        AcceptGate.of(ctx.channel()).acceptOnePerRead()
    }

    override fun channelRead(ctx: ChannelHandlerContext, msg: Any) {
        val server = ctx.channel()
        if (msg is Channel) {
            open++
            msg.closeFuture().addListener(ChannelFutureListener { closedLater(server) })
            if (open >= max) AcceptGate.of(server).hold(AcceptGate.CONNECTIONS)
        }
        ctx.fireChannelRead(msg)
    }

    private fun closedLater(server: Channel) {
        val loop = server.eventLoop()
        if (loop.isShuttingDown) return // the server is going away: nothing to accept any more
        try {
            loop.execute { closed(server) }
        } catch (e: java.util.concurrent.RejectedExecutionException) {
            // shut down meanwhile
        }
    }

    private fun closed(server: Channel) {
        open--
        if (open < max) AcceptGate.of(server).release(AcceptGate.CONNECTIONS)
    }
}
