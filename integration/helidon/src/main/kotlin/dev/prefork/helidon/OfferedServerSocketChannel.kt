package dev.prefork.helidon

import java.net.BindException
import java.net.InetSocketAddress
import java.net.ServerSocket
import java.net.SocketAddress
import java.net.SocketOption
import java.nio.channels.AlreadyBoundException
import java.nio.channels.AsynchronousCloseException
import java.nio.channels.ClosedByInterruptException
import java.nio.channels.ClosedChannelException
import java.nio.channels.NotYetBoundException
import java.nio.channels.ServerSocketChannel
import java.nio.channels.SocketChannel
import java.nio.channels.spi.SelectorProvider
import java.util.concurrent.CountDownLatch

/**
 * A server socket channel over [socket], which is bound and listening already: `bind` only
 * checks the port it is asked for. Everything else is [socket]'s, except when [socket] is closed
 * by someone else (prefork, on the worker's SIGTERM): then `accept` waits, as on a socket nobody
 * connects to, until this channel is closed, so the server stops accepting without taking the
 * closed socket for a broken listener. Not a `SelChImpl`, so no `Selector` takes it.
 */
internal class OfferedServerSocketChannel(
    provider: SelectorProvider,
    private val socket: ServerSocketChannel,
) : ServerSocketChannel(provider) {
    private val local = socket.localAddress as InetSocketAddress

    @Volatile private var bound = false
    private val closed = CountDownLatch(1)

    override fun bind(asked: SocketAddress?, backlog: Int): ServerSocketChannel {
        synchronized(this) {
            if (!isOpen) throw ClosedChannelException()
            if (bound) throw AlreadyBoundException()
            val port = (asked as? InetSocketAddress)?.port
            if (asked != null && port != 0 && port != local.port) {
                throw BindException("asked to bind $asked, but this channel is the socket offered to PreforkServerSockets, bound to $local: bind that port, or port 0")
            }
            bound = true
        }
        return this
    }

    override fun accept(): SocketChannel? {
        if (!isOpen) throw ClosedChannelException()
        if (!bound) throw NotYetBoundException()
        try {
            return socket.accept()
        } catch (e: ClosedByInterruptException) {
            close() // what an interrupted accept does to the channel it blocked on
            throw e
        } catch (e: ClosedChannelException) {
            if (!isOpen) throw e
            if (!isBlocking) return null
            awaitClose()
            throw AsynchronousCloseException()
        }
    }

    /** Until this channel is closed; an interrupt closes it, as it would during a blocking accept. */
    private fun awaitClose() {
        try {
            closed.await()
        } catch (e: InterruptedException) {
            close()
            Thread.currentThread().interrupt()
            throw ClosedByInterruptException()
        }
    }

    override fun getLocalAddress(): SocketAddress? {
        if (!isOpen) throw ClosedChannelException()
        return if (bound) local else null
    }

    override fun <T : Any?> setOption(name: SocketOption<T>, value: T): ServerSocketChannel {
        socket.setOption(name, value)
        return this
    }

    override fun <T : Any?> getOption(name: SocketOption<T>): T = socket.getOption(name)

    override fun supportedOptions(): Set<SocketOption<*>> = socket.supportedOptions()

    /** The offered socket's own adaptor: its `getChannel()` is the offered socket, not this channel. */
    override fun socket(): ServerSocket = socket.socket()

    override fun implConfigureBlocking(block: Boolean) {
        socket.configureBlocking(block)
    }

    override fun implCloseSelectableChannel() {
        try {
            socket.close()
        } finally {
            closed.countDown()
        }
    }

    override fun toString(): String = "OfferedServerSocketChannel[$local, over $socket]"
}
