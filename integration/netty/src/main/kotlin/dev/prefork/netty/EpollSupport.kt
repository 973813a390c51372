package dev.prefork.netty

import io.netty.channel.ServerChannel
import io.netty.channel.epoll.Epoll
import io.netty.channel.epoll.EpollServerSocketChannel
import java.nio.channels.ServerSocketChannel

/** Netty's native epoll transport, touched only when its classes are on the class path. */
internal object EpollSupport {
    val available: Boolean by lazy {
        try {
            Class.forName("io.netty.channel.epoll.Epoll", false, EpollSupport::class.java.classLoader)
            Epoll.isAvailable()
        } catch (e: ClassNotFoundException) {
            false
        } catch (e: LinkageError) {
            false
        }
    }

    fun unavailability(): String = try {
        Epoll.unavailabilityCause()?.toString() ?: "unknown"
    } catch (e: LinkageError) {
        "netty-transport-classes-epoll is not on the class path"
    }

    fun serverChannel(socket: ServerSocketChannel): ServerChannel {
        // O_NONBLOCK belongs to the socket every worker shares: Netty must never block in accept.
        socket.configureBlocking(false)
        return EpollServerSocketChannel(FdHandover.take(socket))
    }
}
