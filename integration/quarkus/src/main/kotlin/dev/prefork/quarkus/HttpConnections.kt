package dev.prefork.quarkus

import dev.prefork.Worker
import dev.prefork.netty.PreforkNetty
import io.netty.channel.Channel
import io.netty.channel.ChannelFutureListener
import io.netty.channel.ChannelHandler.Sharable
import io.netty.channel.ChannelHandlerContext
import io.netty.channel.ChannelInboundHandlerAdapter
import io.netty.channel.ChannelPipeline
import io.netty.handler.codec.http.HttpResponseEncoder
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicBoolean

/**
 * The connections a worker's Vert.x HTTP server accepts from the shared socket, seen on its
 * server channel before Vert.x's own acceptor: each gets prefork-netty's HTTP drain handler
 * right after Vert.x's HTTP/1 codec, and the worker's SIGTERM waits, within
 * `Worker.drainTimeout()`, for all of them to close before the JVM shuts down: Quarkus's
 * shutdown closes every connection, requests in flight included.
 *
 * Vert.x 4 offers no hook into a connection's pipeline. Its initializer builds the pipeline
 * when the connection registers: with the codec then (plain HTTP/1), or with a handler that adds
 * the codec when the first bytes come (HTTP/2 detection, TLS, the PROXY protocol) and only then
 * passes them on. So the drain handler goes in at registration when the codec is there, else
 * at the first read that reaches a handler added last at registration: the codec, added
 * meanwhile, comes after it. What this relies on of Vert.x 4.5 (`HttpServerWorker`): that order,
 * and a codec made of Netty's `HttpRequestDecoder` and `HttpResponseEncoder`, in that order.
 * An HTTP/2 connection gets no drain handler; the wait still counts it.
 */
internal class HttpConnections : ChannelInboundHandlerAdapter() {
    private val open: MutableSet<Channel> = ConcurrentHashMap.newKeySet()
    private val waitsOnStop = AtomicBoolean()
    private val atRegistration = AtRegistration()
    private val atFirstRead = AtFirstRead()

    override fun channelRead(ctx: ChannelHandlerContext, msg: Any) {
        if (msg is Channel) {
            open += msg
            msg.closeFuture().addListener(ChannelFutureListener { open -= msg })
            msg.pipeline().addFirst("prefork-drain-placement", atRegistration)
        }
        ctx.fireChannelRead(msg)
    }

    /** Puts a drain handler after the HTTP/1 response encoder; false when the pipeline has none (yet). */
    private fun placeDrainHandler(pipeline: ChannelPipeline): Boolean {
        val encoder = pipeline.context(HttpResponseEncoder::class.java) ?: return false
        pipeline.addAfter(encoder.name(), "prefork-drain", PreforkNetty.httpDrainHandler())
        // Not before the first drain handler: prefork-netty's drain adds its own stop action then, and this wait must follow it.
        if (waitsOnStop.compareAndSet(false, true)) Worker.onStopAccepting { awaitClosed() }
        return true
    }

    private fun awaitClosed() {
        val deadline = System.nanoTime() + Worker.drainTimeout().toNanos()
        while (open.isNotEmpty() && deadline - System.nanoTime() > 0) Thread.sleep(POLL_MILLIS)
    }

    /** First in a new connection's pipeline; Vert.x's initializer has run when the connection registers. */
    @Sharable
    private inner class AtRegistration : ChannelInboundHandlerAdapter() {
        override fun channelRegistered(ctx: ChannelHandlerContext) {
            val pipeline = ctx.pipeline()
            pipeline.remove(this)
            if (!placeDrainHandler(pipeline)) pipeline.addLast("prefork-drain-placement", atFirstRead)
            ctx.fireChannelRegistered()
        }
    }

    /** Last in the pipeline as Vert.x's initializer left it: the first bytes reach it once Vert.x added its codec. */
    @Sharable
    private inner class AtFirstRead : ChannelInboundHandlerAdapter() {
        override fun channelRead(ctx: ChannelHandlerContext, msg: Any) {
            ctx.pipeline().remove(this)
            placeDrainHandler(ctx.pipeline())
            ctx.fireChannelRead(msg)
        }
    }

    private companion object {
        const val POLL_MILLIS = 5L
    }
}
