package dev.prefork.netty

import io.netty.channel.Channel
import io.netty.channel.ServerChannelRecvByteBufAllocator
import io.netty.channel.socket.nio.NioServerSocketChannel
import io.netty.util.AttributeKey

/**
 * Whether a server channel accepts: it reads (`autoRead`) while no reason holds it back. prefork
 * holds an adopted channel until its `bind` completed, [ConnectionLimit] at its limit, and
 * [AcceptPacer] while its worker is busy; each releases only its own hold. Touched on the
 * channel's event loop, or before the channel is registered.
 */
internal class AcceptGate private constructor(private val channel: Channel) {
    private var holds = 0

    fun hold(reason: Int) {
        holds = holds or reason
        apply()
    }

    fun release(reason: Int) {
        holds = holds and reason.inv()
        apply()
    }

    fun isHeld(reason: Int): Boolean = holds and reason != 0

    /**
     * NIO accepts a whole batch before it hands any connection on, so a hold would come after
     * the batch: one connection per read instead. Not for epoll: it hands each connection on
     * before it accepts the next, and an edge-triggered read cut short would not come back for
     * the connections still queued.
     */
    fun acceptOnePerRead() {
        if (channel is NioServerSocketChannel) channel.config().setRecvByteBufAllocator(ServerChannelRecvByteBufAllocator().maxMessagesPerRead(1))
    }

    private fun apply() {
        val read = holds == 0
        if (channel.config().isAutoRead != read && (!read || channel.isOpen)) channel.config().isAutoRead = read
    }

    companion object {
        const val UNBOUND = 1
        const val CONNECTIONS = 2
        const val BUSY = 4

        private val KEY = AttributeKey.valueOf<AcceptGate>("dev.prefork.netty.AcceptGate")

        fun of(channel: Channel): AcceptGate {
            val attribute = channel.attr(KEY)
            return attribute.get() ?: AcceptGate(channel).let { attribute.setIfAbsent(it) ?: it }
        }
    }
}
