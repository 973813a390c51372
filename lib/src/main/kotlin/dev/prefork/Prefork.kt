package dev.prefork

import dev.prefork.supervisor.WorkerRuntime
import kotlinx.coroutines.runBlocking
import java.io.IOException
import java.nio.channels.ServerSocketChannel
import java.util.OptionalInt

/**
 * The blocking facade for Java: the same operations as the top-level functions of
 * `Processes.kt`, without coroutines. `Prefork.forkProcesses(3, 3)` blocks the calling thread
 * for the whole life of the supervisor (and returns at once in a worker).
 */
public object Prefork {
    /** The processors this process may use, affinity and cgroup quotas honoured; see [dev.prefork.cpuCount]. */
    @JvmStatic
    public fun cpuCount(): Int = dev.prefork.cpuCount()

    /** This worker's task id; empty in the supervisor, in a spare not yet assigned, and in a process prefork did not start. See [dev.prefork.taskId]. */
    @JvmStatic
    public fun taskId(): OptionalInt = dev.prefork.taskId()?.let { OptionalInt.of(it) } ?: OptionalInt.empty()

    /** See [dev.prefork.isWorker]: true in workers and spares, false in the supervisor. */
    @JvmStatic
    public fun isWorker(): Boolean = dev.prefork.isWorker()

    /**
     * Tornado's `fork_processes(num_processes, max_restarts)`: starts [numProcesses] workers
     * ([cpuCount] if 0 or less) and returns the task id in each. In the supervisor it blocks for
     * the supervisor's whole life and never returns normally; see [dev.prefork.forkProcesses].
     * Java gets `forkProcesses()`, `forkProcesses(n)` and `forkProcesses(n, maxRestarts)`.
     *
     * @throws TooManyRestartsException when workers failed more often than [maxRestarts] allows.
     * @throws IOException when a worker cannot be started.
     * @throws IllegalStateException when called a second time in the same process.
     */
    @JvmStatic
    @JvmOverloads
    @Throws(IOException::class, TooManyRestartsException::class, InterruptedException::class)
    public fun forkProcesses(numProcesses: Int = 0, maxRestarts: Int = 100): Int =
        forkProcesses(ForkOptions.builder().numProcesses(numProcesses).maxRestarts(maxRestarts).build())

    /**
     * [forkProcesses] with every setting of [options]: graceful stop, restart window, backoff,
     * spares, timeouts, recycling. Blocks in the supervisor as the other form does; see
     * [dev.prefork.forkProcesses].
     *
     * @throws TooManyRestartsException when the restart budget is spent.
     * @throws IOException when a worker cannot be started.
     * @throws IllegalStateException when called a second time in the same process.
     */
    @JvmStatic
    @Throws(IOException::class, TooManyRestartsException::class, InterruptedException::class)
    public fun forkProcesses(options: ForkOptions): Int =
        if (WorkerRuntime.isWorker) claimFork()!! else runBlocking { dev.prefork.forkProcesses(options) }

    /**
     * Tornado's `bind_sockets`: listening sockets on [port] for every address [address]
     * resolves to (all interfaces when null). Called before [forkProcesses], every worker's
     * matching call returns the same sockets; see [dev.prefork.bindSockets]. Java gets the
     * overloads `bindSockets(port)`, `bindSockets(port, address)` and so on.
     *
     * @throws java.net.BindException naming address:port when it is in use or not permitted.
     */
    @JvmStatic
    @JvmOverloads
    @Throws(IOException::class)
    public fun bindSockets(
        port: Int,
        address: String? = null,
        backlog: Int = 128,
        reusePort: Boolean = false,
    ): List<ServerSocketChannel> = dev.prefork.bindSockets(port, address, backlog, reusePort)

    /** One worker more, from code in the supervisor process; see [dev.prefork.addWorker]. */
    @JvmStatic
    public fun addWorker(): Unit = dev.prefork.addWorker()

    /** One worker fewer (the highest id, stopped gracefully); see [dev.prefork.removeWorker]. */
    @JvmStatic
    public fun removeWorker(): Unit = dev.prefork.removeWorker()

    /** In the supervisor process: every worker's status ([dev.prefork.workerStatus]). */
    @JvmStatic
    public fun workerStatus(): List<WorkerStatus> = dev.prefork.workerStatus()
}
