package dev.prefork.supervisor

import java.io.File
import java.io.IOException
import java.net.InetSocketAddress
import java.nio.file.Files
import java.nio.file.Path

/**
 * This process's TCP sockets as the kernel lists them: `/proc/net/tcp` and `tcp6` (every socket
 * of the network namespace, with its inode) joined with `/proc/self/fd` (which inodes are
 * ours, at which fd). Plain file reads, no native binding: the worker uses it on SIGTERM, the supervisor
 * to find the fd number the JDK hides behind a channel.
 */
internal object ProcNet {
    /** One row of `/proc/net/tcp{,6}`: the local address as the kernel prints it, port, state, inode. */
    class Entry(val localHex: String, val localPort: Int, val state: String, val inode: String, val v6Table: Boolean) {
        val listening: Boolean get() = state == LISTEN

        /** The local address and port (an IPv4-mapped IPv6 address as the IPv4 one). */
        fun address(): InetSocketAddress {
            val bytes = ByteArray(localHex.length / 2)
            // Each 32-bit word is printed in host (little-endian) byte order.
            for (i in bytes.indices) {
                val word = i / 4 * 4
                val hex = (word + 3 - i % 4) * 2
                bytes[i] = localHex.substring(hex, hex + 2).toInt(16).toByte()
            }
            return InetSocketAddress(java.net.InetAddress.getByAddress(bytes), localPort)
        }

        /** Whether this row is bound to [local] (an IPv4 address may be listed in tcp6, mapped). */
        fun isBoundTo(local: InetSocketAddress): Boolean = local.port == localPort && addressHex(local, v6Table) == localHex
    }

    fun entries(): List<Entry> = table(TCP, v6Table = false) + table(TCP6, v6Table = true)

    /** fd number by socket inode, for every socket this process has open. */
    fun socketFdsByInode(): Map<String, Int> = Files.newDirectoryStream(Path.of("/proc/self/fd")).use { dir ->
        dir.mapNotNull { entry ->
            val target = try {
                Files.readSymbolicLink(entry).toString()
            } catch (e: IOException) {
                return@mapNotNull null // closed since the directory was listed
            }
            val fd = entry.fileName.toString().toIntOrNull()
            if (fd != null && target.startsWith("socket:[")) target.substring(8, target.length - 1) to fd else null
        }.toMap()
    }

    /**
     * Connections of this process whose local port is one of [ports]: the connections it
     * accepted from its listening sockets on those ports, still open.
     */
    fun acceptedConnections(ports: Set<Int>): Int {
        if (ports.isEmpty()) return 0
        val mine = socketFdsByInode()
        return entries().count { !it.listening && it.localPort in ports && it.inode in mine }
    }

    /** [local]'s address as a table lists it (`v6Table`: tcp6, where IPv4 shows as `::ffff:a.b.c.d`); null if it cannot be there. */
    private fun addressHex(local: InetSocketAddress, v6Table: Boolean): String? {
        val bytes = local.address.address
        val address = when {
            bytes.size == 16 && v6Table -> bytes
            bytes.size == 4 && v6Table -> ByteArray(10) + byteArrayOf(-1, -1) + bytes
            bytes.size == 4 -> bytes
            else -> return null
        }
        return hexAddress(address)
    }

    private fun table(file: File, v6Table: Boolean): List<Entry> {
        val lines = try {
            file.readLines()
        } catch (e: IOException) {
            return emptyList() // no IPv6 in this kernel, or no /proc
        }
        return lines.drop(1).mapNotNull { line ->
            val fields = line.trim().split(WHITESPACE)
            if (fields.size <= 9) return@mapNotNull null
            val local = fields[1]
            Entry(local.substringBefore(':'), local.substringAfter(':').toInt(16), fields[3], fields[9], v6Table)
        }
    }

    /** The kernel prints each 32-bit word of an address in host (little-endian) byte order. */
    private fun hexAddress(bytes: ByteArray): String = buildString {
        for (word in bytes.indices step 4) {
            for (i in 3 downTo 0) append("%02X".format(bytes[word + i]))
        }
    }

    private val TCP = File("/proc/net/tcp")
    private val TCP6 = File("/proc/net/tcp6")
    private val WHITESPACE = Regex("\\s+")
    private const val LISTEN = "0A"
}
