package dev.prefork.supervisor

import java.io.File
import java.io.FileDescriptor
import java.net.InetSocketAddress
import java.net.ProtocolFamily
import java.net.StandardProtocolFamily
import java.nio.channels.ServerSocketChannel
import java.nio.channels.spi.SelectorProvider
import java.nio.file.Files
import java.nio.file.Path

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
 * command line. Nothing here loads jnr: it runs on the worker's start-up path.
 */
internal object SocketHandoff {
    /** A listening socket of this process, as an fd number and whether the kernel made it IPv6 (dual-stack). */
    data class Found(val fd: Int, val inet6: Boolean)

    fun fdOf(channel: ServerSocketChannel): Found {
        val local = channel.localAddress as InetSocketAddress
        // The JDK opens IPv6 (dual-stack) sockets whenever it can, so 127.0.0.1 may sit in tcp6 as ::ffff:127.0.0.1.
        val inodes = listeningInodes(File("/proc/net/tcp"), local, v6Table = false).map { it to false } +
            listeningInodes(File("/proc/net/tcp6"), local, v6Table = true).map { it to true }
        check(inodes.isNotEmpty()) { "no listening socket for $local in /proc/net/tcp or tcp6" }
        val links = Files.newDirectoryStream(Path.of("/proc/self/fd")).use { dir ->
            dir.mapNotNull { entry ->
                val target = try {
                    Files.readSymbolicLink(entry).toString()
                } catch (e: java.io.IOException) {
                    return@mapNotNull null
                }
                entry.fileName.toString().toIntOrNull()?.let { it to target }
            }
        }
        val matches = links.mapNotNull { (fd, target) ->
            inodes.firstOrNull { target == "socket:[${it.first}]" }?.let { Found(fd, it.second) }
        }
        check(matches.size == 1) { "cannot tell the fd of the socket bound to $local (candidates: $matches)" }
        return matches[0]
    }

    private fun listeningInodes(table: File, local: InetSocketAddress, v6Table: Boolean): List<String> {
        if (!table.exists()) return emptyList()
        val bytes = local.address.address
        val address = when {
            bytes.size == 16 && v6Table -> bytes
            bytes.size == 4 && v6Table -> ByteArray(10) + byteArrayOf(-1, -1) + bytes
            bytes.size == 4 -> bytes
            else -> return emptyList()
        }
        val wanted = hexAddress(address) + ":" + "%04X".format(local.port)
        return table.readLines().drop(1).mapNotNull { line ->
            val fields = line.trim().split(Regex("\\s+"))
            if (fields.size > 9 && fields[1] == wanted && fields[3] == LISTEN) fields[9] else null
        }
    }

    /** The kernel prints each 32-bit word of an address in host (little-endian) byte order. */
    private fun hexAddress(bytes: ByteArray): String = buildString {
        for (word in bytes.indices step 4) {
            for (i in 3 downTo 0) append("%02X".format(bytes[word + i]))
        }
    }

    fun adopt(fd: Int, inet6: Boolean): ServerSocketChannel {
        try {
            val ioUtil = Class.forName("sun.nio.ch.IOUtil")
            val newFd = ioUtil.getDeclaredMethod("newFD", Int::class.javaPrimitiveType).apply { isAccessible = true }
            val impl = Class.forName("sun.nio.ch.ServerSocketChannelImpl").getDeclaredConstructor(
                SelectorProvider::class.java,
                ProtocolFamily::class.java,
                FileDescriptor::class.java,
                Boolean::class.javaPrimitiveType,
            ).apply { isAccessible = true }
            val family = if (inet6) StandardProtocolFamily.INET6 else StandardProtocolFamily.INET
            return impl.newInstance(SelectorProvider.provider(), family, newFd.invoke(null, fd), true) as ServerSocketChannel
        } catch (e: Exception) { // reflective failures (inaccessible, missing on this JDK) and the constructor's IOException
            throw IllegalStateException(
                "cannot adopt the supervisor's listening socket (fd $fd): the worker JVM needs " +
                    "${WorkerCommand.ADD_OPENS} on its command line (prefork adds it when it re-executes " +
                    "a java launcher; add it to ForkOptions.workerCommand)",
                e,
            )
        }
    }

    private const val LISTEN = "0A"
}
