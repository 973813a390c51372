package dev.prefork.helidon

import java.net.InetSocketAddress
import java.nio.channels.ServerSocketChannel
import java.nio.channels.spi.SelectorProvider

/**
 * Servers that open and bind their listening channel themselves, with no way to be handed one,
 * on prefork's shared sockets. Helidon 4 SE's listener does `ServerSocketChannel.open()`, then
 * `bind(address, backlog)`, then blocking `accept()` calls on its own thread; its
 * `ServerSocketChannel.open()` goes through the JVM's `SelectorProvider`, and that is the hook:
 * [install] makes [PreforkSelectorProvider] the JVM's provider, and after [offer] the next
 * server socket channel opened is the offered socket, whose `bind` binds nothing:
 *
 * ```java
 * public static void main(String[] args) {
 *     PreforkServerSockets.install();                      // before anything opens a channel
 *     ServerSocketChannel socket = Prefork.bindSockets(8080, "127.0.0.1").get(0);
 *     Prefork.forkProcesses(options);
 *     PreforkServerSockets.offer(socket);                  // Helidon's listener opens this one
 *     WebServer server = WebServer.builder().host("127.0.0.1").port(8080).routing(...).build().start();
 * }
 * ```
 *
 * On the worker's SIGTERM prefork closes its handle on the socket; the server's channel then
 * stops accepting without an error, and its accepting thread waits until the server closes the
 * channel in its own stop. Helidon takes a failed `accept` for a broken listener and stops it
 * at once, cutting keep-alive connections off; this way its stop comes when the worker decides
 * (`Worker.onDrained`).
 *
 * The JVM needs `--add-opens java.base/sun.nio.ch=ALL-UNNAMED` (prefork's workers already need
 * it; in a jar's manifest, `Add-Opens: java.base/sun.nio.ch`): the provider delegates everything
 * else to the JDK's own, `sun.nio.ch.DefaultSelectorProvider`.
 */
public object PreforkServerSockets {
    private const val PROPERTY = "java.nio.channels.spi.SelectorProvider"

    /**
     * Makes [PreforkSelectorProvider] this JVM's `SelectorProvider`. The JVM chooses its provider
     * once, at the first channel, selector or pipe anyone opens, so call this first in `main`,
     * before `bindSockets`; starting `java` with
     * `-Djava.nio.channels.spi.SelectorProvider=dev.prefork.helidon.PreforkSelectorProvider`
     * does the same, even earlier, and this call then only checks it. Calling it again is harmless.
     *
     * @throws IllegalStateException when the JVM chose another provider already (the message
     *   names it), when the system property names another one, or when the JDK's own provider
     *   is out of reach (`--add-opens java.base/sun.nio.ch=ALL-UNNAMED` missing). The property
     *   is set only once the JDK's provider was reached, so that NIO still works after a failure.
     */
    @JvmStatic
    public fun install() {
        val ours = PreforkSelectorProvider::class.java.name
        val named = System.getProperty(PROPERTY)
        check(named == null || named == ours) { "$PROPERTY is already set to $named: it cannot be $ours too" }
        PlatformSelectorProvider.get()
        System.setProperty(PROPERTY, ours)
        val chosen = SelectorProvider.provider()
        if (chosen is PreforkSelectorProvider) return
        if (named == null) System.clearProperty(PROPERTY)
        throw IllegalStateException(
            if (chosen.javaClass.name == ours) {
                "$ours was loaded by the system class loader, and prefork-helidon by ${PreforkServerSockets::class.java.classLoader}: " +
                    "put prefork-helidon on the application class path"
            } else {
                "the JVM chose its SelectorProvider (${chosen.javaClass.name}) before install() was called: call it first in main, " +
                    "before anything opens a channel, or start java with -D$PROPERTY=$ours"
            },
        )
    }

    /**
     * Makes [socket] (bound and listening: what `bindSockets` returns) the next server socket
     * channel this JVM opens, by `ServerSocketChannel.open()` or `SelectorProvider.provider()`
     * (for an IP protocol family). The channel opened is a `ServerSocketChannel` over [socket]:
     * its `bind(address, backlog)` binds nothing, and succeeds for [socket]'s port or port 0
     * (any other is a `java.net.BindException` naming both addresses); `accept`, socket options,
     * blocking mode and `close` are [socket]'s; it cannot be registered with a `Selector`, so
     * only servers that accept on a blocking thread, as Helidon does, can use it.
     *
     * Offer right before the server starts: the offer is taken by whoever opens a server
     * channel next, in any thread, so a server with several listeners started at once (Helidon
     * starts its named sockets in parallel) cannot tell which takes it.
     *
     * @throws IllegalArgumentException when [socket] is closed or not bound to an IP address.
     * @throws IllegalStateException when [install] was not called, or a socket offered before
     *   was not taken yet.
     */
    @JvmStatic
    public fun offer(socket: ServerSocketChannel) {
        require(socket.isOpen) { "socket is closed: $socket" }
        require(socket.localAddress is InetSocketAddress) { "socket is not bound to an IP address: $socket" }
        val provider = SelectorProvider.provider()
        check(provider is PreforkSelectorProvider) {
            "this JVM's SelectorProvider is ${provider.javaClass.name}: call PreforkServerSockets.install() first in main"
        }
        provider.offer(socket)
    }
}
