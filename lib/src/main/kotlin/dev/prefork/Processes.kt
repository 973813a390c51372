@file:JvmName("Processes")

package dev.prefork

import dev.prefork.supervisor.Sockets
import dev.prefork.supervisor.Supervisor
import dev.prefork.supervisor.WorkerCommand
import dev.prefork.supervisor.WorkerRuntime
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.runInterruptible
import java.io.IOException
import java.nio.channels.ServerSocketChannel

/**
 * The processors this process may use: the JDK's count, which honours CPU affinity
 * (`taskset`, cpusets) and cgroup CPU quotas, so a container limited to 2 CPUs gets 2.
 */
public fun cpuCount(): Int = Runtime.getRuntime().availableProcessors()

/**
 * This worker's task id, in `0 until n`; null unless this process is a worker started by
 * [forkProcesses]. A spare ([ForkOptions.Builder.spareWorkers]) has none until the supervisor
 * gives it the id of a worker it replaces, when its `forkProcesses` returns that id.
 */
public fun taskId(): Int? = WorkerRuntime.taskId

/**
 * True in every process a supervisor started, spares included, from the first line of `main`;
 * false in the supervisor and in a program that never forks. Code meant for the supervisor
 * alone (printing how to reach it, say) runs when this is false, rather than when [taskId] is
 * null, which a spare also sees.
 */
public fun isWorker(): Boolean = WorkerRuntime.isWorker

/** Whether forkProcesses was called; a plain lock, as an AtomicBoolean would set up VarHandles on a worker's start-up path. */
private object Fork {
    var claimed = false
}

/**
 * Marks this process as forked (a second call is an error) and, in a worker, returns its id
 * without touching coroutines: a worker's start-up path stays as light as a plain JVM's.
 */
internal fun claimFork(): Int? {
    synchronized(Fork) {
        check(!Fork.claimed) { "forkProcesses was already called in this process" }
        Fork.claimed = true
    }
    return WorkerRuntime.start()
}

/**
 * Tornado's `fork_processes`: runs [numProcesses] copies of this program ([cpuCount] if 0 or
 * less) and returns the task id in each of them. See [forkProcesses] with [ForkOptions].
 */
@JvmSynthetic
@Throws(IOException::class, TooManyRestartsException::class)
public suspend fun forkProcesses(numProcesses: Int = 0, maxRestarts: Int = 100): Int =
    forkProcesses(ForkOptions.builder().numProcesses(numProcesses).maxRestarts(maxRestarts).build())

/**
 * Starts the workers and supervises them; in a worker, returns its task id at once.
 *
 * The JVM cannot fork, so each worker is a new JVM started with this one's command line (or
 * [ForkOptions.workerCommand]) that runs `main` again from the top; its own call here returns
 * its id. Sockets bound with [bindSockets] before this call are shared with every worker.
 *
 * In a spare ([ForkOptions.Builder.spareWorkers]) this blocks its thread until the supervisor
 * assigns the spare the id of a worker that exited, and returns that id.
 *
 * In the supervisor this never returns normally: the process exits 0 once every worker exited
 * with status 0, or after a graceful stop on SIGTERM/SIGINT. Workers that fail are restarted
 * with the same id; past the restart budget the survivors are stopped gracefully and
 * [TooManyRestartsException] is thrown.
 *
 * @throws IllegalStateException when called a second time in the same process.
 * @throws IOException when a worker cannot be started (survivors are stopped first).
 */
@JvmSynthetic
@Throws(IOException::class, TooManyRestartsException::class)
public suspend fun forkProcesses(options: ForkOptions): Int {
    // A spare waits for its id on a thread of its own, not on the caller's dispatcher.
    if (WorkerRuntime.isSpare) return runInterruptible(Dispatchers.IO) { claimFork()!! }
    claimFork()?.let { return it }
    val count = if (options.numProcesses <= 0) cpuCount() else options.numProcesses
    val command = options.workerCommand ?: WorkerCommand.ofThisJvm()
    Supervisor(options, count, command, Sockets.sealForFork()).run()
}

/**
 * Tornado's `bind_sockets`: listening sockets on [port] (0: any free port) for each address
 * [address] resolves to (all interfaces when null), with SO_REUSEADDR.
 *
 * Called before [forkProcesses], the sockets are bound here and handed to every worker, whose
 * matching call (same order) returns the very same sockets: one accept queue for all workers.
 * With [reusePort], each process binds a socket of its own with SO_REUSEPORT instead (on the
 * port the supervisor got, when [port] is 0), and the kernel balances connections among them.
 *
 * @throws java.net.BindException naming address:port when it is in use or not permitted.
 * @throws IllegalArgumentException for a port outside `0..65535` or a backlog below 1.
 */
@JvmOverloads
@Throws(IOException::class)
public fun bindSockets(
    port: Int,
    address: String? = null,
    backlog: Int = 128,
    reusePort: Boolean = false,
): List<ServerSocketChannel> = Sockets.bind(port, address, backlog, reusePort)

/**
 * In the supervisor process (from a [WorkerListener], or any thread of it once
 * `forkProcesses` started the workers): one worker more, as SIGTTIN does. The new worker gets
 * the next id (task ids stay `0 until n`); a spare takes it when there is one.
 *
 * @throws IllegalStateException outside a running supervisor.
 */
public fun addWorker(): Unit = runningSupervisor("addWorker").resize(1)

/**
 * In the supervisor process: one worker fewer, as SIGTTOU does. The worker with the highest id
 * leaves the pool and is stopped gracefully (it stops accepting and drains, as in a rolling
 * restart); the last worker is never removed.
 *
 * @throws IllegalStateException outside a running supervisor.
 */
public fun removeWorker(): Unit = runningSupervisor("removeWorker").resize(-1)

/**
 * In the supervisor process: every worker's id, pid, uptime, restarts, CPU time and resident
 * memory, by id, as SIGUSR1 logs them. Safe from any thread of the supervisor, the listener
 * included; reads `/proc` once per worker. During a rolling restart or a recycling an id shows
 * its replacement (`starting` until it is ready), not the old worker that still serves or drains.
 *
 * @throws IllegalStateException outside a running supervisor.
 */
public fun workerStatus(): List<WorkerStatus> = runningSupervisor("workerStatus").workerStatus()

private fun runningSupervisor(call: String): Supervisor =
    checkNotNull(Supervisor.running) { "$call: no supervisor runs in this process (it must be called after forkProcesses started the workers, in the supervisor)" }
