package dev.prefork.supervisor

import java.io.FileDescriptor
import java.lang.reflect.Constructor
import java.lang.reflect.Method
import java.net.InetSocketAddress
import java.net.ProtocolFamily
import java.net.StandardProtocolFamily
import java.nio.channels.ServerSocketChannel
import java.nio.channels.spi.SelectorProvider

/**
 * Moving a listening socket from the supervisor JVM to a worker JVM.
 *
 * Supervisor side: the JDK hides a channel's fd number, so [fdOf] finds it without any JVM
 * flag: the socket's inode from `/proc/net/tcp{,6}` (by local address and port, LISTEN
 * state), then the entry of `/proc/self/fd` that links to `socket:[inode]`.
 *
 * Worker side: [adopt] wraps an inherited fd in the JDK's own `ServerSocketChannelImpl`, the
 * way `System.inheritedChannel()` does for fd 0; that takes
 * `--add-opens java.base/sun.nio.ch=ALL-UNNAMED`, which the supervisor puts on the worker's
 * command line. Nothing here loads a native binding: it runs on the worker's start-up path.
 */
internal object SocketHandoff {
    /**
     * The JDK internals adoption takes, looked up once, when a worker adopts its first socket
     * (a holder: the supervisor, which may lack the flag they need, never loads it).
     * `Integer.TYPE` rather than `Int::class.javaPrimitiveType`, which would load Kotlin's
     * reflection support on a worker's start-up path.
     */
    private object Internals {
        val newFd: Method = Class.forName("sun.nio.ch.IOUtil").getDeclaredMethod("newFD", Integer.TYPE).apply { isAccessible = true }
        val constructor: Constructor<*> = Class.forName("sun.nio.ch.ServerSocketChannelImpl").getDeclaredConstructor(
            SelectorProvider::class.java,
            ProtocolFamily::class.java,
            FileDescriptor::class.java,
            java.lang.Boolean.TYPE,
        ).apply { isAccessible = true }

        /**
         * The channels' provider: what `SelectorProvider.provider()` returns, without its first
         * call's search of every jar on the class path for a service file (opening a fat jar's
         * directory: 15-25 ms of a worker's start here). Unless a provider is named by system
         * property, that search finds none in practice and the JDK takes this same default.
         */
        val provider: SelectorProvider =
            if (System.getProperty("java.nio.channels.spi.SelectorProvider") != null) {
                SelectorProvider.provider()
            } else {
                Class.forName("sun.nio.ch.DefaultSelectorProvider").getDeclaredMethod("get").apply { isAccessible = true }.invoke(null) as SelectorProvider
            }
    }

    /** A listening socket of this process, as an fd number and whether the kernel made it IPv6 (dual-stack). */
    data class Found(val fd: Int, val inet6: Boolean)

    fun fdOf(channel: ServerSocketChannel): Found {
        val local = channel.localAddress as InetSocketAddress
        // The JDK opens IPv6 (dual-stack) sockets whenever it can, so 127.0.0.1 may sit in tcp6 as ::ffff:127.0.0.1.
        val listening = ProcNet.entries().filter { it.listening && it.isBoundTo(local) }
        check(listening.isNotEmpty()) { "no listening socket for $local in /proc/net/tcp or tcp6" }
        val mine = ProcNet.socketFdsByInode()
        val matches = listening.mapNotNull { entry -> mine[entry.inode]?.let { Found(it, entry.v6Table) } }
        check(matches.size == 1) { "cannot tell the fd of the socket bound to $local (candidates: $matches)" }
        return matches[0]
    }

    fun adopt(fd: Int, inet6: Boolean): ServerSocketChannel {
        try {
            val family = if (inet6) StandardProtocolFamily.INET6 else StandardProtocolFamily.INET
            val descriptor = Internals.newFd.invoke(null, fd)
            return Internals.constructor.newInstance(Internals.provider, family, descriptor, java.lang.Boolean.TRUE) as ServerSocketChannel
        } catch (e: Exception) { // reflection refused (inaccessible) and the constructor's IOException
            throw cannotAdopt(fd, e)
        } catch (e: LinkageError) { // Internals failed to initialise: refused, or missing on this JDK
            throw cannotAdopt(fd, e)
        }
    }

    private fun cannotAdopt(fd: Int, cause: Throwable) = IllegalStateException(
        "cannot adopt the supervisor's listening socket (fd $fd): the worker JVM needs " +
            "${WorkerCommand.ADD_OPENS} on its command line (prefork adds it when it re-executes " +
            "a java launcher; add it to ForkOptions.workerCommand)",
        cause,
    )
}
