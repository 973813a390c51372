package dev.prefork.supervisor

import dev.prefork.ForkOptions
import dev.prefork.Subprocess
import dev.prefork.WORKER_VARIABLE_PREFIX
import dev.prefork.posix.Fds
import java.net.InetSocketAddress
import java.nio.channels.ServerSocketChannel

/**
 * How the supervisor starts a worker JVM, a spare or a training run: the command it is given,
 * this process's environment without prefork's and systemd's variables, plus the worker's own,
 * in a process group of its own (a terminal's Ctrl-C reaches only the supervisor, which then
 * stops the workers in order), with these fds:
 * - 0: the first shared socket, with [ForkOptions.inheritedChannel];
 * - 3: the read end of the supervisor-alive pipe, whose write end only the supervisor holds, so
 *   that every worker reads end-of-file and exits when it dies, even by SIGKILL;
 * - 4: the worker's ready pipe (`spare`, `ready`, heartbeats);
 * - from 5 up: the shared sockets, in group order; after them, a spare's assignment pipe.
 *
 * [socketGroups] are the `bindSockets` groups, each with whether it uses SO_REUSEPORT (then
 * every worker binds its own socket, and none is passed).
 */
internal class WorkerLauncher(
    private val options: ForkOptions,
    socketGroups: List<Pair<List<ServerSocketChannel>, Boolean>>,
    private val heartbeatMillis: Long?,
) : AutoCloseable {
    private val passedSockets = socketGroups.filter { !it.second }.flatMap { it.first }.associateWith(SocketHandoff::fdOf)

    /** The shared sockets' fds in this process, in the order workers get them. */
    val parentSocketFds: List<Int> = passedSockets.values.map { it.fd }

    /** The shared sockets, which the supervisor closes to refuse new connections when it stops. */
    val sharedChannels: Set<ServerSocketChannel> = passedSockets.keys

    private val encodedGroups: String = encode(socketGroups, FIRST_SOCKET_FD)

    /** The same groups for SIGUSR2's new supervisor, whose sockets start at fd 4 (fd 3: its ready pipe). */
    val successorGroups: String = encode(socketGroups, Upgrade.FIRST_SOCKET_FD)

    /** With [ForkOptions.inheritedChannel], the first shared socket becomes every worker's fd 0. */
    private val inheritedFd: Int? = if (options.inheritedChannel) {
        checkNotNull(parentSocketFds.firstOrNull()) {
            "ForkOptions.inheritedChannel(true) needs a socket bound with bindSockets (reusePort = false) before forkProcesses"
        }
    } else {
        null
    }

    /** A worker waits this long for its accepted connections on SIGTERM: never past the SIGKILL that follows. */
    private val drainMillis = minOf(options.drainTimeout, options.gracefulTimeout).toMillis()

    /** The supervisor-alive pipe. Opened last, after every step of set-up that can fail. */
    private val watchPipe = Fds.pipe()
    private val watchPipeTarget = checkNotNull(WorkerEnvironment.fdTarget(watchPipe[0])) { "cannot read /proc/self/fd/${watchPipe[0]}" }

    /** Where a spare finds its assignment pipe: after the shared sockets. */
    val spareAssignFd: Int get() = FIRST_SOCKET_FD + parentSocketFds.size

    /**
     * Starts [command] with this supervisor's environment plus [variables]; [assignFd] is a
     * spare's assignment pipe (this process's read end, which the spare gets a copy of).
     */
    fun spawn(command: List<String>, variables: Map<String, String>, assignFd: Int?): Subprocess {
        // Only the service's main process speaks systemd's protocols: its workers neither notify nor look for activated sockets.
        val environment = inheritedEnvironment(dropping = SystemdNotify.VARIABLES) + variables + mapOf(
            WorkerEnvironment.CONTROL_FDS to "$WATCH_FD,$READY_FD",
            WorkerEnvironment.SOCKETS to encodedGroups,
            WorkerEnvironment.WATCH_PIPE to watchPipeTarget,
            WorkerEnvironment.DRAIN_MS to drainMillis.toString(),
        ) + listOfNotNull(
            (WorkerEnvironment.READY to WorkerRuntime.EXPLICIT).takeIf { options.explicitReady },
            (WorkerEnvironment.INHERITED_CHANNEL to "1").takeIf { inheritedFd != null },
            heartbeatMillis?.let { WorkerEnvironment.HEARTBEAT_MS to it.toString() },
        )
        val builder = Subprocess.builder(command).env(environment).newProcessGroup().passFd(watchPipe[0]).readPipe()
        parentSocketFds.forEach { builder.passFd(it) }
        assignFd?.let { builder.passFd(it) } // after the sockets: fd 5 + their number
        inheritedFd?.let { builder.stdinFrom(it) }
        return builder.startDetached()
    }

    /** This supervisor's environment for a child JVM: without prefork's worker variables, systemd's activation, or [dropping]. */
    fun inheritedEnvironment(dropping: Collection<String>): Map<String, String> = System.getenv().filterKeys {
        !it.startsWith(WORKER_VARIABLE_PREFIX) && it !in SocketActivation.VARIABLES && it !in dropping
    }

    /** The groups as a child must replay them, its inherited sockets numbered from [firstFd] up. */
    private fun encode(socketGroups: List<Pair<List<ServerSocketChannel>, Boolean>>, firstFd: Int): String {
        var next = firstFd
        return WorkerEnvironment.encode(
            socketGroups.map { (channels, reusePort) ->
                if (reusePort) {
                    WorkerEnvironment.Group.ReusePort((channels.first().localAddress as InetSocketAddress).port)
                } else {
                    WorkerEnvironment.Group.Shared(channels.map { next++ to passedSockets.getValue(it).inet6 })
                }
            },
        )
    }

    /** Closes the supervisor-alive pipe: the workers, if any are left, read its end and exit. */
    override fun close() {
        Fds.closeQuietly(watchPipe[0])
        Fds.closeQuietly(watchPipe[1])
    }

    private companion object {
        const val WATCH_FD = 3
        const val READY_FD = 4
        const val FIRST_SOCKET_FD = 5
    }
}
