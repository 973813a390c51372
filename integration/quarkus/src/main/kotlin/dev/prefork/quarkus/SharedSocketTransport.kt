package dev.prefork.quarkus

import dev.prefork.netty.PreforkNetty
import io.netty.channel.ChannelFactory
import io.netty.channel.ServerChannel
import io.vertx.core.impl.transports.JDKTransport
import java.net.InetSocketAddress
import java.nio.channels.ServerSocketChannel
import java.util.concurrent.atomic.AtomicBoolean

/**
 * The Vert.x transport of a JVM whose HTTP server serves prefork's shared socket: Vert.x's JDK
 * (NIO) transport, whose TCP server channel is prefork-netty's over the socket
 * ([PreforkNetty.nioServerChannelFactory]: its bind binds nothing, then says `Worker.ready()`;
 * it closes on the worker's SIGTERM), with [HttpConnections] on it.
 *
 * Vert.x 4 asks `ServiceLoader` for transports only when `VertxOptions.preferNativeTransport`
 * is set, and takes the first available one (`io.vertx.core.impl.VertxBuilder.findTransport`);
 * this one is available once [PreforkQuarkus.serve] was given a socket, so every other JVM
 * (the supervisor, a run without prefork, tests) gets Vert.x's own choice. Being a
 * `JDKTransport` (an implementation class of Vert.x's, `io.vertx.core.impl.transports`),
 * Vert.x reports no native transport and configures sockets as for NIO.
 */
internal class SharedSocketTransport : JDKTransport() {
    override fun isAvailable(): Boolean = served != null

    override fun serverChannelFactory(domainSocket: Boolean): ChannelFactory<out ServerChannel> {
        val socket = served
        return if (domainSocket || socket == null) super.serverChannelFactory(domainSocket) else socket.channelFactory
    }

    /** The socket this JVM's Vert.x serves, and its one server channel. */
    private class Served(socket: ServerSocketChannel) {
        private val adopted = PreforkNetty.nioServerChannelFactory(socket)
        private val local = socket.localAddress as InetSocketAddress
        private val made = AtomicBoolean()

        val channelFactory = ChannelFactory<ServerChannel> {
            check(made.compareAndSet(false, true)) {
                "Vert.x serves prefork's socket bound to $local already and asks for another server channel: a Vert.x server " +
                    "on a port of its own (the management interface, a separate HTTPS or gRPC port) cannot run in a prefork " +
                    "worker, where every worker would bind that port; serve it on $local or turn it off"
            }
            adopted.newChannel().also { it.pipeline().addLast("prefork-http-connections", HttpConnections()) }
        }
    }

    companion object {
        @Volatile private var served: Served? = null

        fun serve(socket: ServerSocketChannel) {
            val given = Served(socket) // checks the socket first
            synchronized(this) {
                check(served == null) { "PreforkQuarkus.serve was called already: one socket per JVM, the HTTP server's" }
                served = given
            }
        }
    }
}
