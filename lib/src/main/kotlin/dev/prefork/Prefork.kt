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
    @JvmStatic
    public fun cpuCount(): Int = dev.prefork.cpuCount()

    @JvmStatic
    public fun taskId(): OptionalInt = dev.prefork.taskId()?.let { OptionalInt.of(it) } ?: OptionalInt.empty()

    /** See [dev.prefork.isWorker]: true in workers and spares, false in the supervisor. */
    @JvmStatic
    public fun isWorker(): Boolean = dev.prefork.isWorker()

    @JvmStatic
    @JvmOverloads
    @Throws(IOException::class, TooManyRestartsException::class, InterruptedException::class)
    public fun forkProcesses(numProcesses: Int = 0, maxRestarts: Int = 100): Int =
        forkProcesses(ForkOptions.builder().numProcesses(numProcesses).maxRestarts(maxRestarts).build())

    @JvmStatic
    @Throws(IOException::class, TooManyRestartsException::class, InterruptedException::class)
    public fun forkProcesses(options: ForkOptions): Int =
        if (WorkerRuntime.isWorker) claimFork()!! else runBlocking { dev.prefork.forkProcesses(options) }

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
