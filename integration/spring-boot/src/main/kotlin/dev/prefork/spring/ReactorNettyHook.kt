package dev.prefork.spring

import dev.prefork.netty.PreforkNetty
import io.netty.channel.Channel
import io.netty.channel.EventLoopGroup
import io.netty.channel.socket.ServerSocketChannel as NettyServerSocketChannel
import org.slf4j.LoggerFactory
import reactor.core.publisher.Mono
import reactor.netty.NettyPipeline
import reactor.netty.http.server.HttpServer
import reactor.netty.resources.LoopResources
import java.nio.channels.ServerSocketChannel
import java.time.Duration
import java.util.concurrent.atomic.AtomicBoolean

/**
 * Reactor Netty (WebFlux) in a prefork worker. Reactor Netty makes its server channel through
 * the server's `LoopResources` (`onChannel(ServerSocketChannel, group)`) and then binds it:
 * the customizer runs the server on loop resources whose server channel is prefork-netty's
 * channel over the shared socket (its bind binds nothing, then says `Worker.ready()`), on NIO
 * event loops, which that channel needs. Spring Boot would run the server on its own
 * `ReactorResourceFactory` loops after the customizers, so the factory is given none. Each
 * connection gets prefork-netty's HTTP drain handler after the codec: from the worker's
 * SIGTERM on, answers say `Connection: close`.
 */
internal object ReactorNettyHook {
    /** Called with Boot's `NettyReactiveWebServerFactory`, before it makes its server. */
    fun attach(factory: Any, socket: ServerSocketChannel) {
        val loops = SharedSocketLoops(socket, LoopResources.create("prefork-http"))
        ServerHook.addCustomizer(factory, "addServerCustomizers", "NettyServerCustomizer") { server ->
            (server as HttpServer)
                .bindAddress { socket.localAddress }
                .runOn(loops, false)
                .doOnChannelInit { _, channel, _ ->
                    if (channel.pipeline().get(NettyPipeline.HttpCodec) != null) {
                        channel.pipeline().addAfter(NettyPipeline.HttpCodec, "prefork-drain", PreforkNetty.httpDrainHandler())
                    } else if (!http2Logged.getAndSet(true)) {
                        logger.info("prefork: a connection without Reactor Netty's HTTP/1.1 codec (HTTP/2) is not drained; it ends when the server stops")
                    }
                }
        }
        val setResourceFactory = factory.javaClass.methods.firstOrNull { it.name == "setResourceFactory" && it.parameterCount == 1 }
            ?: throw PreforkServerException(
                "prefork worker cannot serve the shared socket with Reactor Netty: ${factory.javaClass.name} " +
                    "(Spring Boot ${SpringBoot.version()}) has no setResourceFactory, so Boot's own event loops would make a socket of their own",
                "Report this Spring Boot version to prefork; meanwhile serve the application with Tomcat or Jetty.",
            )
        ServerHook.invoke(setResourceFactory, factory, null)
    }

    private val logger = LoggerFactory.getLogger(ReactorNettyHook::class.java)

    /** Said once: a server with HTTP/2 has many such connections. */
    private val http2Logged = AtomicBoolean()

    /** [delegate]'s NIO event loops, and one server channel: prefork-netty's, over [socket]. */
    private class SharedSocketLoops(socket: ServerSocketChannel, private val delegate: LoopResources) : LoopResources {
        private val serverChannel = PreforkNetty.nioServerChannelFactory(socket)

        @Suppress("UNCHECKED_CAST") // asked for a ServerSocketChannel, it is one: a NioServerSocketChannel
        override fun <CHANNEL : Channel> onChannel(channelType: Class<CHANNEL>, group: EventLoopGroup): CHANNEL =
            if (channelType == NettyServerSocketChannel::class.java) serverChannel.newChannel() as CHANNEL else delegate.onChannel(channelType, group)

        override fun <CHANNEL : Channel> onChannelClass(channelType: Class<CHANNEL>, group: EventLoopGroup): Class<out CHANNEL> =
            delegate.onChannelClass(channelType, group)

        // The adopted channel is a NioServerSocketChannel: its event loops must be NIO ones.
        override fun onServer(useNative: Boolean): EventLoopGroup = delegate.onServer(false)

        override fun onServerSelect(useNative: Boolean): EventLoopGroup = delegate.onServerSelect(false)

        override fun onClient(useNative: Boolean): EventLoopGroup = delegate.onClient(useNative)

        override fun daemon(): Boolean = delegate.daemon()

        override fun isDisposed(): Boolean = delegate.isDisposed

        override fun dispose() = delegate.dispose()

        override fun disposeLater(quietPeriod: Duration, timeout: Duration): Mono<Void> = delegate.disposeLater(quietPeriod, timeout)
    }
}
