package dev.prefork.helidon

import java.net.ProtocolFamily
import java.net.StandardProtocolFamily
import java.nio.channels.Channel
import java.nio.channels.DatagramChannel
import java.nio.channels.Pipe
import java.nio.channels.ServerSocketChannel
import java.nio.channels.SocketChannel
import java.nio.channels.spi.AbstractSelector
import java.nio.channels.spi.SelectorProvider
import java.util.concurrent.atomic.AtomicReference

/**
 * The JVM's `SelectorProvider` once [PreforkServerSockets.install] ran (or with
 * `-Djava.nio.channels.spi.SelectorProvider=dev.prefork.helidon.PreforkSelectorProvider`): the
 * JDK's own provider for everything, except that the first server socket channel opened after
 * [PreforkServerSockets.offer] is the offered socket. Public because the JDK instantiates it by
 * name; use [PreforkServerSockets].
 *
 * @throws IllegalStateException from the constructor when the JDK's own provider is out of
 *   reach (`--add-opens java.base/sun.nio.ch=ALL-UNNAMED` missing); the JDK reports it as a
 *   `ServiceConfigurationError` at the first channel opened.
 */
public class PreforkSelectorProvider : SelectorProvider() {
    private val platform: SelectorProvider = PlatformSelectorProvider.get()
    private val offered = AtomicReference<ServerSocketChannel?>()

    internal fun offer(socket: ServerSocketChannel) {
        check(offered.compareAndSet(null, socket)) {
            "a socket offered before (${offered.get()}) was not taken yet: offer one socket per server socket channel the server opens"
        }
    }

    /** The offered socket as a new channel, once; null when none is offered. */
    private fun take(): ServerSocketChannel? = offered.getAndSet(null)?.let { OfferedServerSocketChannel(this, it) }

    /** The offered socket, as a channel whose `bind` binds nothing, once after an offer; otherwise the JDK's. */
    override fun openServerSocketChannel(): ServerSocketChannel = take() ?: platform.openServerSocketChannel()

    /** The offered socket for `INET` and `INET6`, once after an offer; otherwise, and for `UNIX`, the JDK's. */
    override fun openServerSocketChannel(family: ProtocolFamily): ServerSocketChannel {
        val ip = family == StandardProtocolFamily.INET || family == StandardProtocolFamily.INET6
        return (if (ip) take() else null) ?: platform.openServerSocketChannel(family)
    }

    /** The JDK's. */
    override fun openSocketChannel(): SocketChannel = platform.openSocketChannel()

    /** The JDK's. */
    override fun openSocketChannel(family: ProtocolFamily): SocketChannel = platform.openSocketChannel(family)

    /** The JDK's. */
    override fun openDatagramChannel(): DatagramChannel = platform.openDatagramChannel()

    /** The JDK's. */
    override fun openDatagramChannel(family: ProtocolFamily): DatagramChannel = platform.openDatagramChannel(family)

    /** The JDK's. */
    override fun openPipe(): Pipe = platform.openPipe()

    /** The JDK's. */
    override fun openSelector(): AbstractSelector = platform.openSelector()

    /** The JDK's: `System.inheritedChannel()` goes on working (prefork's `inheritedChannel(true)`). */
    override fun inheritedChannel(): Channel? = platform.inheritedChannel()
}
