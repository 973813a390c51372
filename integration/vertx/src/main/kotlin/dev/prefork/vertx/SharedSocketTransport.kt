package dev.prefork.vertx

import dev.prefork.netty.PreforkNetty
import io.netty.bootstrap.Bootstrap
import io.netty.bootstrap.ServerBootstrap
import io.netty.channel.ChannelFactory
import io.netty.channel.EventLoopGroup
import io.netty.channel.ServerChannel
import io.netty.channel.socket.DatagramChannel
import io.vertx.core.datagram.DatagramSocketOptions
import io.vertx.core.net.ClientOptionsBase
import io.vertx.core.net.NetServerOptions
import io.vertx.core.spi.transport.Transport
import java.net.SocketAddress
import java.nio.channels.ServerSocketChannel
import java.util.concurrent.ThreadFactory
import java.util.concurrent.atomic.AtomicReference

/** Which of prefork-netty's server channels matches the event loops of a Vert.x transport. */
internal enum class ServerChannelKind {
    NIO {
        override fun factory(socket: ServerSocketChannel) = PreforkNetty.nioServerChannelFactory(socket)
    },
    EPOLL {
        override fun factory(socket: ServerSocketChannel) = PreforkNetty.epollServerChannelFactory(socket)
    },
    ;

    abstract fun factory(socket: ServerSocketChannel): ChannelFactory<ServerChannel>
}

/**
 * [base], every member of it, except that the first TCP server channel comes from [shared]:
 * Vert.x asks its transport for a server channel factory right before each bind, so the first
 * server it listens with takes the shared socket. Domain sockets and later servers are
 * [base]'s. The interface's default methods are delegated by hand (Kotlin's `by` leaves Java
 * default methods to the interface), as the native transports override them.
 */
internal class SharedSocketTransport(
    private val base: Transport,
    shared: ChannelFactory<ServerChannel>,
    private val maxConnections: Int,
) : Transport by base {
    private val shared = AtomicReference(shared)

    override fun serverChannelFactory(domainSocket: Boolean): ChannelFactory<out ServerChannel> {
        val factory = if (domainSocket) null else shared.getAndSet(null)
        factory ?: return base.serverChannelFactory(domainSocket)
        return ChannelFactory {
            factory.newChannel().also { channel ->
                if (maxConnections < Int.MAX_VALUE) channel.pipeline().addLast("prefork-connection-limit", PreforkNetty.connectionLimit(maxConnections))
                channel.pipeline().addLast("prefork-http-drain", HttpDrainPlacement.Acceptor)
            }
        }
    }

    override fun supportsDomainSockets(): Boolean = base.supportsDomainSockets()

    override fun supportFileRegion(): Boolean = base.supportFileRegion()

    override fun isAvailable(): Boolean = base.isAvailable

    override fun unavailabilityCause(): Throwable? = base.unavailabilityCause()

    override fun convert(address: io.vertx.core.net.SocketAddress): SocketAddress = base.convert(address)

    override fun convert(address: SocketAddress): io.vertx.core.net.SocketAddress? = base.convert(address)

    override fun eventLoopGroup(type: Int, nThreads: Int, threadFactory: ThreadFactory, ioRatio: Int): EventLoopGroup =
        base.eventLoopGroup(type, nThreads, threadFactory, ioRatio)

    override fun configure(channel: DatagramChannel, options: DatagramSocketOptions) = base.configure(channel, options)

    override fun configure(options: ClientOptionsBase, connectTimeout: Int, domainSocket: Boolean, bootstrap: Bootstrap) =
        base.configure(options, connectTimeout, domainSocket, bootstrap)

    override fun configure(options: NetServerOptions, domainSocket: Boolean, bootstrap: ServerBootstrap) =
        base.configure(options, domainSocket, bootstrap)
}
