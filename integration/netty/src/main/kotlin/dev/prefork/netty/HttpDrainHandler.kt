package dev.prefork.netty

import dev.prefork.Worker
import io.netty.channel.ChannelDuplexHandler
import io.netty.channel.ChannelFutureListener
import io.netty.channel.ChannelHandlerContext
import io.netty.channel.ChannelPromise
import io.netty.handler.codec.http.HttpRequest
import io.netty.handler.codec.http.HttpResponse
import io.netty.handler.codec.http.HttpStatusClass
import io.netty.handler.codec.http.HttpUtil
import io.netty.handler.codec.http.LastHttpContent
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.ScheduledFuture
import java.util.concurrent.TimeUnit

/**
 * One HTTP/1.x connection as it ends when its worker stops: requests in flight are answered,
 * with `Connection: close`, and the connection closes after the answer; an idle keep-alive
 * connection is closed after a short grace (a client that sends on it meanwhile gets its
 * answer); a connection that has not sent its first request yet is left to send it. Closing a
 * connection the moment it goes idle would race with the client's next request, which the
 * client could only see fail. All state is touched on the connection's event loop.
 */
internal class HttpDrainHandler(private val idleCloseMillis: Long) : ChannelDuplexHandler() {
    private lateinit var context: ChannelHandlerContext
    private var load: ConnectionLoad? = null
    private var inFlight = 0
    private var answered = 0
    private var draining = false
    private var closeAfterAnswer = false
    private var idleClose: ScheduledFuture<*>? = null

    override fun handlerAdded(ctx: ChannelHandlerContext) {
        context = ctx
        load = ConnectionLoad.of(ctx.channel())?.also { WorkerLoad.requestsCounted() }
        Registry.add(this)
    }

    override fun handlerRemoved(ctx: ChannelHandlerContext) {
        Registry.remove(this)
        idleClose?.cancel(false)
    }

    override fun channelInactive(ctx: ChannelHandlerContext) {
        Registry.remove(this)
        ctx.fireChannelInactive()
    }

    override fun channelRead(ctx: ChannelHandlerContext, msg: Any) {
        if (msg is HttpRequest) {
            inFlight++
            load?.requestRead()
            idleClose?.cancel(false)
            idleClose = null
        }
        ctx.fireChannelRead(msg)
    }

    override fun write(ctx: ChannelHandlerContext, msg: Any, promise: ChannelPromise) {
        if (msg is HttpResponse && msg.status().codeClass() == HttpStatusClass.INFORMATIONAL) {
            ctx.write(msg, promise) // 100 Continue: the request is still in flight
            return
        }
        if (msg is HttpResponse && draining) {
            HttpUtil.setKeepAlive(msg, false)
            closeAfterAnswer = true
        }
        if (msg is LastHttpContent) {
            inFlight = maxOf(0, inFlight - 1)
            answered++
            load?.answered()
            // Close only after an answer that said so: a client that saw keep-alive may be sending again already.
            if (closeAfterAnswer && inFlight == 0) {
                val written = promise.unvoid()
                ctx.write(msg, written)
                written.addListener(ChannelFutureListener.CLOSE)
                return
            }
        }
        ctx.write(msg, promise)
    }

    /** The worker got SIGTERM; runs on this connection's event loop. */
    private fun drain() {
        if (draining) return
        draining = true
        if (inFlight == 0 && answered > 0) {
            idleClose = context.executor().schedule({ if (inFlight == 0) context.close() }, idleCloseMillis, TimeUnit.MILLISECONDS)
        }
    }

    /** Every drain handler of this JVM, told when the worker stops accepting. */
    private object Registry {
        private val handlers = ConcurrentHashMap.newKeySet<HttpDrainHandler>()

        @Volatile private var draining = false

        init {
            Worker.onStopAccepting { drainAll() }
        }

        fun add(handler: HttpDrainHandler) {
            handlers += handler
            if (draining) handler.context.executor().execute(handler::drain)
        }

        fun remove(handler: HttpDrainHandler) {
            handlers -= handler
        }

        private fun drainAll() {
            draining = true
            handlers.forEach { it.context.executor().execute(it::drain) }
        }
    }

    internal companion object {
        const val DEFAULT_IDLE_CLOSE_MILLIS = 1_000L
    }
}
