package dev.prefork.vertx

import dev.prefork.netty.PreforkNetty
import io.netty.channel.Channel
import io.netty.channel.ChannelHandler.Sharable
import io.netty.channel.ChannelHandlerContext
import io.netty.channel.ChannelInboundHandlerAdapter
import io.netty.handler.codec.http2.Http2ConnectionHandler

/**
 * Puts prefork-netty's HTTP drain handler right after Vert.x's HTTP/1.x codec in each
 * connection's pipeline. Vert.x offers no hook into that pipeline, and builds it late: at the
 * connection's start, or (with h2c, its default) once the first bytes told HTTP/1.x from
 * HTTP/2. So a placer goes first in every connection and looks for the codec, by the name
 * Vert.x 5 gives its encoder, around each read until it finds it. With h2c the first request
 * has passed by then; the drain handler counts it as answered with its response, which is what
 * it needs of that request. A connection that turns out HTTP/2 gets none: it stays open until
 * the drain timeout, when closing Vert.x sends GOAWAY. On a plain TCP server the placer stays,
 * one name lookup per read.
 */
internal object HttpDrainPlacement {
    /** Vert.x's name for its HTTP/1.x response encoder, the codec's outer end. */
    private const val HTTP_ENCODER = "httpEncoder"

    /** On the server channel: a [Placer] for each accepted connection, before Vert.x's handlers. */
    @Sharable
    object Acceptor : ChannelInboundHandlerAdapter() {
        override fun channelRead(ctx: ChannelHandlerContext, msg: Any) {
            if (msg is Channel) msg.pipeline().addLast("prefork-http-drain-placer", Placer())
            ctx.fireChannelRead(msg)
        }
    }

    private class Placer : ChannelInboundHandlerAdapter() {
        override fun channelRead(ctx: ChannelHandlerContext, msg: Any) {
            place(ctx)
            ctx.fireChannelRead(msg)
            if (!ctx.isRemoved) place(ctx)
        }

        private fun place(ctx: ChannelHandlerContext) {
            val pipeline = ctx.pipeline()
            if (pipeline.get(HTTP_ENCODER) != null) {
                pipeline.addAfter(HTTP_ENCODER, "prefork-http-drain", PreforkNetty.httpDrainHandler())
                pipeline.remove(this)
            } else if (pipeline.get(Http2ConnectionHandler::class.java) != null) {
                pipeline.remove(this)
            }
        }
    }
}
