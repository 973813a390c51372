package dev.prefork.supervisor

import dev.prefork.log.info
import dev.prefork.log.logger
import dev.prefork.log.warn
import dev.prefork.posix.Fds
import java.net.InetAddress
import java.net.InetSocketAddress
import java.nio.channels.ServerSocketChannel

private val logger = logger("dev.prefork.supervisor.SocketActivation")

/**
 * systemd's socket activation (`sd_listen_fds`): a service started with `LISTEN_PID` equal to
 * its own pid and `LISTEN_FDS=n` holds n sockets from fd 3 on, named by `LISTEN_FDNAMES`.
 * `bindSockets` in the supervisor then returns the activated socket bound to the address and
 * port it asks for instead of binding one, and the workers share it as any other. The
 * variables are kept from every worker and child ([VARIABLES]); the fds get close-on-exec, so
 * a child of `ProcessBuilder` does not hold them either.
 *
 * Adopting an fd as a JDK channel takes `--add-opens java.base/sun.nio.ch=ALL-UNNAMED` in this
 * JVM too (on the command line, or `Add-Opens: java.base/sun.nio.ch` in an executable jar's
 * manifest); without it, the first activated `bindSockets` fails and says so.
 */
internal object SocketActivation {
    /** The variables of the protocol, which no worker or child may inherit (constants: a spawn's environment names them without loading this class). */
    const val LISTEN_PID = "LISTEN_PID"
    const val LISTEN_FDS = "LISTEN_FDS"
    const val LISTEN_FDNAMES = "LISTEN_FDNAMES"
    val VARIABLES = listOf(LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES)

    private const val FIRST_FD = 3

    /** One socket systemd passed: its fd, name, and where it listens (null: not a listening TCP socket). */
    class Activated(val fd: Int, val name: String?, val local: InetSocketAddress?, val inet6: Boolean) {
        var taken = false

        override fun toString(): String =
            "fd $fd" + (name?.let { " \"$it\"" } ?: "") + " " + (local?.let { Sockets.describe(it.address, it.port) } ?: "(not a listening TCP socket)")
    }

    /** What systemd passed this process; empty when it was not socket-activated (or the variables are another process's). */
    val sockets: List<Activated> by lazy(::parse)

    private fun parse(): List<Activated> {
        val pid = System.getenv(LISTEN_PID)?.toLongOrNull() ?: return emptyList()
        if (pid != ProcessHandle.current().pid()) return emptyList() // inherited from a parent that was activated
        val count = System.getenv(LISTEN_FDS)?.toIntOrNull()?.takeIf { it > 0 } ?: return emptyList()
        val names = System.getenv(LISTEN_FDNAMES)?.split(':')
        val listening = ProcNet.entries().filter { it.listening }.associateBy { it.inode }
        return (0 until count).map { i ->
            val fd = FIRST_FD + i
            Fds.setCloseOnExec(fd)
            val inode = WorkerEnvironment.fdTarget(fd)?.takeIf { it.startsWith("socket:[") }?.let { it.substring(8, it.length - 1) }
            val entry = inode?.let(listening::get)
            Activated(fd, names?.getOrNull(i)?.takeIf { it.isNotEmpty() }, entry?.address(), entry?.v6Table == true)
        }.also { found -> logger.info { "socket activation: systemd passed ${found.joinToString()}" } }
    }

    /**
     * The activated sockets for `bindSockets(port, address)`: one per address [addresses] holds
     * (null: the wildcard address), on [port] (0: whichever port that address has); null when
     * this process was not socket-activated. Throws when an address has no activated socket.
     */
    fun take(port: Int, address: String?, addresses: List<InetAddress?>, reusePort: Boolean): List<ServerSocketChannel>? {
        val all = sockets
        if (all.isEmpty()) return null
        val call = "bindSockets($port, ${address?.let { "\"$it\"" } ?: "null"})"
        require(!reusePort) { "$call: reusePort cannot be used with the sockets systemd passed (LISTEN_FDS=${all.size}): they are shared" }
        val matches = addresses.map { wanted ->
            all.firstOrNull { !it.taken && it.local != null && (port == 0 || it.local.port == port) && sameAddress(it.local.address, wanted) }
                ?: throw IllegalStateException(
                    "$call: systemd passed no socket for ${Sockets.describe(wanted, port)}; " +
                        "it passed ${all.joinToString()} (LISTEN_FDS=${all.size})",
                )
        }
        val channels = ArrayList<ServerSocketChannel>(matches.size)
        try {
            for (socket in matches) {
                channels.add(adopt(socket, call))
                socket.taken = true
            }
        } catch (e: Exception) {
            channels.forEach { it.close() }
            throw e
        }
        return channels
    }

    /** Activated sockets no `bindSockets` call asked for, said once the workers start (they are left open, as systemd passed them). */
    fun warnUnused() {
        val unused = sockets.filter { !it.taken }
        if (unused.isNotEmpty()) logger.warn { "socket activation: no bindSockets call asked for ${unused.joinToString()}" }
    }

    private fun adopt(socket: Activated, call: String): ServerSocketChannel = try {
        SocketHandoff.adopt(socket.fd, socket.inet6)
    } catch (e: IllegalStateException) {
        throw IllegalStateException(
            "$call: cannot adopt the socket systemd passed ($socket): this JVM needs ${WorkerCommand.ADD_OPENS} " +
                "on its command line (or Add-Opens: java.base/sun.nio.ch in the manifest of its executable jar)",
            e.cause ?: e,
        )
    }

    /** The wildcard asks for a socket on all interfaces (0.0.0.0 or ::); any other address for itself, IPv4 also as IPv4-mapped. */
    private fun sameAddress(bound: InetAddress, wanted: InetAddress?): Boolean =
        if (wanted == null) bound.isAnyLocalAddress else bound == wanted
}
