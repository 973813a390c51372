package dev.prefork.netty

import dev.prefork.Worker
import dev.prefork.isWorker
import io.netty.channel.ChannelFactory
import io.netty.channel.ChannelHandler.Sharable
import io.netty.channel.ChannelHandlerContext
import io.netty.channel.ChannelInboundHandlerAdapter
import io.netty.channel.ChannelOutboundHandlerAdapter
import io.netty.channel.ChannelPromise
import io.netty.channel.ServerChannel
import java.net.BindException
import java.net.InetSocketAddress
import java.net.SocketAddress
import java.nio.channels.ClosedChannelException
import java.nio.channels.ServerSocketChannel
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean

/**
 * A Netty server channel over a socket that is already bound and listening. Netty's bootstrap
 * registers a server channel, then binds it; binding again would fail (EINVAL), so a handler
 * at the head of the pipeline completes the bind without passing it on, once it checked the
 * port. The channel does not read (accept) before that, as after a real bind. In a worker, an
 * [AcceptPacer] leaves connections to the other workers while this one is busy.
 */
internal object AdoptedServerChannel {
    /** How long a worker's SIGTERM waits for its server channel to close on its event loop. */
    private const val CLOSE_MILLIS = 5_000L

    fun factory(socket: ServerSocketChannel, create: () -> ServerChannel): ChannelFactory<ServerChannel> {
        require(socket.isOpen) { "socket is closed: $socket" }
        val local = requireNotNull(socket.localAddress as InetSocketAddress?) { "socket is not bound: $socket" }
        val made = AtomicBoolean()
        return ChannelFactory {
            check(made.compareAndSet(false, true)) {
                "a Netty server channel was already made over the socket bound to $local: one channel per socket"
            }
            create().also { prepare(it, local) }
        }
    }

    private fun prepare(channel: ServerChannel, local: InetSocketAddress) {
        AcceptGate.of(channel).hold(AcceptGate.UNBOUND)
        channel.pipeline().addFirst("prefork-already-bound", AlreadyBound(local))
        // Only where other workers share the queue: a process alone has no one to leave a connection to.
        if (isWorker()) AcceptPacer.fromProperties()?.let { channel.pipeline().addFirst("prefork-accept-pacer", it) }
        channel.pipeline().addFirst("prefork-closed-on-stop", ClosedOnStop)
        // Closing this process's server channel stops its accepting; the socket stays open in the other workers.
        Worker.onStopAccepting { channel.close().awaitUninterruptibly(CLOSE_MILLIS, TimeUnit.MILLISECONDS) }
    }

    /**
     * A worker's SIGTERM closes this process's handle on the socket before Netty's own close
     * (so that even a server that registered nothing stops accepting at once); an accept the
     * event loop had under way then fails with ClosedChannelException. That is the stop, not an
     * error: it goes no further (Netty's acceptor would log it as an unhandled exception).
     */
    @Sharable
    private object ClosedOnStop : ChannelInboundHandlerAdapter() {
        override fun exceptionCaught(ctx: ChannelHandlerContext, cause: Throwable) {
            if (cause is ClosedChannelException) {
                ctx.close()
            } else {
                ctx.fireExceptionCaught(cause)
            }
        }
    }

    private class AlreadyBound(private val local: InetSocketAddress) : ChannelOutboundHandlerAdapter() {
        override fun bind(ctx: ChannelHandlerContext, localAddress: SocketAddress, promise: ChannelPromise) {
            val asked = localAddress as? InetSocketAddress
            if (asked != null && asked.port != 0 && asked.port != local.port) {
                promise.setFailure(
                    BindException("asked to bind $asked, but this worker serves on prefork's socket bound to $local: bind the port bindSockets bound"),
                )
                return
            }
            ctx.pipeline().remove(this)
            promise.setSuccess()
            AcceptGate.of(ctx.channel()).release(AcceptGate.UNBOUND)
            Worker.ready()
        }
    }
}
