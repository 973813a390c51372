package dev.prefork.netty

import io.netty.channel.ChannelFactory
import io.netty.channel.ChannelHandler
import io.netty.channel.ServerChannel
import io.netty.channel.socket.nio.NioServerSocketChannel
import java.nio.channels.ServerSocketChannel

/**
 * Netty servers on prefork's sockets. A worker gets its listening sockets already bound (one
 * accept queue shared by every worker), as `java.nio` channels from `bindSockets`; Netty,
 * and the frameworks built on it (Ktor, Micronaut, Reactor Netty, Vert.x), want to create and
 * bind their server channel themselves. The factories here give them a server channel over
 * the adopted socket whose `bind` succeeds without binding again, so the server's own
 * bootstrap code runs unchanged:
 *
 * ```kotlin
 * val socket = bindSockets(8080, "127.0.0.1").single()
 * forkProcesses(options)
 * ServerBootstrap().group(boss, workers)
 *     .channelFactory(PreforkNetty.serverChannelFactory(socket))
 *     .childHandler(...)
 *     .bind("127.0.0.1", 8080)   // no bind happens: the worker serves on the shared socket
 * ```
 *
 * Each channel made here, in a worker, tells the supervisor the worker is ready when `bind`
 * completes (see `Worker.ready`), and closes on the worker's SIGTERM before the JVM shuts down
 * (see `Worker.onStopAccepting`), so the worker stops taking connections from the shared queue
 * while the other workers go on. A factory makes one channel: a socket is served once.
 */
public object PreforkNetty {
    /**
     * Netty's native epoll transport when it is available (`Epoll.isAvailable()`: the
     * `netty-transport-native-epoll` jar for this platform is on the class path), NIO
     * otherwise: the rule Ktor and most Netty servers use to pick their event loops, which the
     * channel must match.
     */
    @JvmStatic
    public fun serverChannelFactory(socket: ServerSocketChannel): ChannelFactory<ServerChannel> =
        if (EpollSupport.available) epollServerChannelFactory(socket) else nioServerChannelFactory(socket)

    /** A `NioServerSocketChannel` over [socket], for NIO event loops (`NioIoHandler` on Netty 4.2, `NioEventLoopGroup` on 4.1). */
    @JvmStatic
    public fun nioServerChannelFactory(socket: ServerSocketChannel): ChannelFactory<ServerChannel> =
        AdoptedServerChannel.factory(socket) { NioServerSocketChannel(socket) }

    /**
     * An `EpollServerSocketChannel` on [socket]'s file descriptor, for epoll event loops
     * (`EpollIoHandler` on Netty 4.2, `EpollEventLoopGroup` on 4.1). When the channel is made, Netty takes the descriptor over: [socket]
     * itself can no longer be used (closing it does nothing), and Netty closes the descriptor.
     * The shared socket is switched to non-blocking mode, which it is in every process sharing
     * it (a worker that loses the race for a connection must not block its event loop).
     *
     * @throws IllegalStateException when Netty's native epoll transport is not available.
     */
    @JvmStatic
    public fun epollServerChannelFactory(socket: ServerSocketChannel): ChannelFactory<ServerChannel> {
        check(EpollSupport.available) { "Netty's native epoll transport is not available: ${EpollSupport.unavailability()}" }
        return AdoptedServerChannel.factory(socket) { EpollSupport.serverChannel(socket) }
    }

    /**
     * A server channel handler (`ServerBootstrap.handler(...)`; with Ktor, inside
     * `configureBootstrap`) that keeps at most [maxConnections] connections of this worker open
     * at once: at the limit the server channel stops accepting, and the next connection waits in
     * the shared accept queue for whichever worker has room. That makes the shared socket
     * balance load by capacity, as a pre-fork worker sized to its cores wants; without it each
     * worker's event loop accepts whatever arrives, however busy the worker is. Keep-alive
     * connections count while they stay open. A new handler for each server channel.
     */
    @JvmStatic
    public fun connectionLimit(maxConnections: Int): ChannelHandler {
        require(maxConnections > 0) { "maxConnections <= 0: $maxConnections" }
        return ConnectionLimit(maxConnections)
    }

    /**
     * A handler that lets HTTP/1.x connections of a worker finish when it stops: from the
     * worker's SIGTERM on, every response says `Connection: close` and its connection closes
     * once the response is written; a connection left idle after a response is closed after
     * [idleCloseMillis]; a connection that has not sent its first request yet is left to send
     * it. Put one in every child pipeline right after the `HttpServerCodec` (with Ktor:
     * `channelPipelineConfig = { addAfter("codec", "prefork-drain", PreforkNetty.httpDrainHandler()) }`).
     * Needs `netty-codec-http`.
     */
    @JvmStatic
    @JvmOverloads
    public fun httpDrainHandler(idleCloseMillis: Long = HttpDrainHandler.DEFAULT_IDLE_CLOSE_MILLIS): ChannelHandler {
        require(idleCloseMillis >= 0) { "idleCloseMillis < 0: $idleCloseMillis" }
        return HttpDrainHandler(idleCloseMillis)
    }
}
