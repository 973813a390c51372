package dev.prefork.supervisor

import java.io.IOException
import java.net.BindException
import java.net.Inet6Address
import java.net.InetAddress
import java.net.InetSocketAddress
import java.net.StandardSocketOptions
import java.nio.channels.ServerSocketChannel

/**
 * `bindSockets` and the record that carries its results across the fork.
 *
 * In the supervisor, each call made before `forkProcesses` is remembered as a group; in a
 * worker, the n-th call returns the n-th group of the supervisor instead of binding: the very
 * same listening sockets (one accept queue for all workers), or for `reusePort` a socket of
 * the worker's own on the supervisor's port.
 */
internal object Sockets {
    /** The supervisor's groups, in call order; closed to new entries once the workers are started. */
    private val groups = mutableListOf<Pair<List<ServerSocketChannel>, Boolean>>()
    private var sealed = false
    private var replayed = 0

    @Synchronized
    fun bind(port: Int, address: String?, backlog: Int, reusePort: Boolean): List<ServerSocketChannel> {
        require(port in 0..65535) { "port out of range: $port" }
        require(backlog > 0) { "backlog <= 0: $backlog" }
        if (WorkerRuntime.isWorker && replayed < WorkerRuntime.socketGroups.size) {
            val index = replayed++
            val channels = replay(index, WorkerRuntime.socketGroups[index], port, address, backlog, WorkerRuntime.describe(), "supervisor's")
            for (channel in channels) WorkerStop.handedOver(channel)
            return channels
        }
        if (!WorkerRuntime.isWorker && !sealed) {
            Upgrade.nextGroup()?.let { (index, group) ->
                val channels = replay(index, group, port, address, backlog, "the new supervisor", "old supervisor's")
                groups += channels to (group is WorkerEnvironment.Group.ReusePort)
                return channels
            }
        }
        val addresses = resolve(address)
        val channels = (if (WorkerRuntime.isWorker) null else SocketActivation.take(port, address, addresses, reusePort))
            ?: bindFresh(port, addresses, backlog, reusePort)
        if (!WorkerRuntime.isWorker && !sealed) groups += channels to reusePort
        return channels
    }

    /** What the supervisor hands its workers; after this call, later binds stay the supervisor's own. */
    @Synchronized
    fun sealForFork(): List<Pair<List<ServerSocketChannel>, Boolean>> {
        sealed = true
        SocketActivation.warnUnused()
        return groups.toList()
    }

    /**
     * The sockets of call #[index] as the process that started this one made it: the very same
     * (inherited fds), or for SO_REUSEPORT a socket of this process's own on the same port. On
     * a worker's start-up path: plain loops, no Kotlin collection extensions (see [WorkerEnvironment.split]).
     */
    private fun replay(
        index: Int,
        group: WorkerEnvironment.Group,
        port: Int,
        address: String?,
        backlog: Int,
        who: String,
        whose: String,
    ): List<ServerSocketChannel> {
        val channels = when (group) {
            is WorkerEnvironment.Group.Shared -> {
                val adopted = ArrayList<ServerSocketChannel>(group.sockets.size)
                for (socket in group.sockets) adopted.add(SocketHandoff.adopt(socket.first, socket.second))
                adopted
            }
            is WorkerEnvironment.Group.ReusePort -> bindFresh(group.port, resolve(address), backlog, reusePort = true)
        }
        val bound = (channels[0].localAddress as InetSocketAddress).port
        if (port != 0 && port != bound) {
            for (channel in channels) channel.close()
            throw IllegalStateException(
                "bindSockets call #${index + 1} in $who asked for port $port, but the " +
                    "$whose call #${index + 1} bound port $bound: call bindSockets in the same order in every process",
            )
        }
        return channels
    }

    /** `127.0.0.1:8080`, `[::1]:8080`, or `*:8080` for all interfaces ([address] null), as error messages name a socket. */
    fun describe(address: InetAddress?, port: Int): String =
        (address?.hostAddress?.let { if (address is Inet6Address) "[$it]" else it } ?: "*") + ":" + port

    /** Every address [address] resolves to, as Tornado binds them; null (all interfaces) for none. */
    private fun resolve(address: String?): List<InetAddress?> = if (address == null) {
        listOf(null)
    } else {
        try {
            InetAddress.getAllByName(address).distinct()
        } catch (e: java.net.UnknownHostException) {
            throw java.net.UnknownHostException("bindSockets: cannot resolve \"$address\": ${e.message}")
        }
    }

    /** Binds one socket per address (all interfaces for null); with port 0 the later sockets take the port the first was given. */
    private fun bindFresh(port: Int, addresses: List<InetAddress?>, backlog: Int, reusePort: Boolean): List<ServerSocketChannel> {
        val bound = mutableListOf<ServerSocketChannel>()
        var nextPort = port
        try {
            for (inet in addresses) {
                val target = if (inet == null) InetSocketAddress(nextPort) else InetSocketAddress(inet, nextPort)
                val channel = ServerSocketChannel.open()
                bound += channel
                channel.setOption(StandardSocketOptions.SO_REUSEADDR, true)
                if (reusePort) channel.setOption(StandardSocketOptions.SO_REUSEPORT, true)
                try {
                    channel.bind(target, backlog)
                } catch (e: IOException) {
                    val where = describe(inet, nextPort)
                    throw (if (e is BindException) BindException("${e.message}: $where") else IOException("bind $where: ${e.message}"))
                        .apply { initCause(e) }
                }
                nextPort = (channel.localAddress as InetSocketAddress).port
            }
            return bound
        } catch (e: Exception) {
            bound.forEach { it.close() }
            throw e
        }
    }
}
