package dev.prefork.supervisor

import dev.prefork.ExitStatus
import dev.prefork.ForkOptions
import dev.prefork.Subprocess
import dev.prefork.WorkerEvent
import dev.prefork.log.debug
import dev.prefork.log.error
import dev.prefork.log.info
import dev.prefork.log.logger
import dev.prefork.log.warn
import dev.prefork.posix.Fds
import java.io.IOException

private val logger = logger("dev.prefork.supervisor.Supervisor")

/**
 * The supervisor's idle JVMs: the spares of [ForkOptions.spareWorkers], worker JVMs started
 * without an id that wait in their `forkProcesses` until the supervisor writes one on their
 * assignment pipe, and the start-up archive's training run, a spare whose JVM writes the
 * archive as it exits, retired as soon as it waits. Used on the supervisor's thread only.
 *
 * [launch] starts a spare's JVM with the given read end of its assignment pipe (for the
 * training run with [launch]'s `training`); [watch] follows its ready pipe and exit; [later]
 * sends the supervisor an event after a delay.
 */
internal class Spares(
    private val options: ForkOptions,
    /** How many spares to keep. */
    val wanted: Int,
    private val launch: (assignFd: Int, training: Boolean) -> Subprocess,
    private val watch: (Child) -> Unit,
    private val later: (millis: Long, event: SupervisorEvent) -> Unit,
) {
    /** Spares not assigned yet, oldest first. */
    private val idle = ArrayDeque<Child>()

    /** Spares that died before they were assigned, in a row: their replacements wait longer each time. */
    private var failures = 0

    /** The JVM whose exit writes the start-up archive, while it runs. */
    var trainer: Child? = null
        private set

    val size: Int get() = idle.size

    /** A spare: a worker JVM without an id, which waits in its forkProcesses for one. */
    fun start() {
        val spare = try {
            launchSpare(training = false)
        } catch (e: IOException) {
            logger.error(e) { "cannot start a spare; trying again later" }
            schedule()
            return
        }
        idle.addLast(spare)
        logger.debug { "spare (pid ${spare.pid}) started" }
        options.listener?.onEvent(WorkerEvent.SpareStarted(spare.pid))
        watch(spare)
    }

    /** As many spares as are missing. */
    fun fill() = repeat(wanted - idle.size) { start() }

    /**
     * The start-up archive's training run, for [archive]: a spare started with the flag that
     * makes its JVM write the archive as it exits, and retired as soon as it waits for an id.
     */
    fun train(archive: StartupArchive?) {
        val run = try {
            launchSpare(training = true)
        } catch (e: IOException) {
            logger.warn(e) { "start-up archive: cannot start its training JVM; workers start without one" }
            return
        }
        trainer = run
        logger.info { "start-up archive: training JVM (pid ${run.pid}) started, for ${archive?.file}" }
        watch(run)
        later(options.readyTimeout.toMillis(), SupervisorEvent.TrainingTimedOut(run))
    }

    /**
     * Gives [id] to the oldest spare, with [ageLimit] as its share of maxWorkerAge; null when
     * there is none. A spare still on its way to `forkProcesses` takes it too: it is further
     * along than a JVM started now, and reads its id when it gets there. The caller puts it in
     * the pool and then calls [tookOver].
     */
    fun handOver(id: Int, ageLimit: Long?): Child? {
        while (true) {
            // One that waits already first: it answers at once.
            val spare = (idle.firstOrNull { it.waiting } ?: idle.firstOrNull())?.also { idle.remove(it) } ?: return null
            val fd = checkNotNull(spare.assignFd)
            spare.assignFd = null
            try {
                Fds.writeSmall(fd, "$id\n".toByteArray(), "the assignment pipe of spare pid ${spare.pid}")
            } catch (e: IOException) {
                logger.warn { "spare (pid ${spare.pid}) cannot take over child $id (${e.message}); trying the next" }
                schedule() // it is dying (its exit event follows, as a spare no longer waiting): another takes its place
                continue
            } finally {
                Fds.closeQuietly(fd)
            }
            spare.id = id
            spare.startedNanos = System.nanoTime()
            spare.ageLimitNanos = ageLimit
            spare.heardNanos = null // what it said while it waited (or, its health check failing, did not) is not its start as a worker
            return spare
        }
    }

    /**
     * Says that [spare] took over its id, and starts another spare a second later: at once, its
     * start-up would compete for the CPU with the first requests of the one that took over.
     */
    fun tookOver(spare: Child) {
        logger.info { "child ${spare.id}: spare (pid ${spare.pid}) takes over" }
        options.listener?.onEvent(WorkerEvent.Started(spare.id, spare.pid, fromSpare = true))
        later(REFILL_MILLIS, SupervisorEvent.SpareDue)
    }

    /** [child] said it waits in its forkProcesses: the training run is retired; a spare is ready to take an id. */
    fun waiting(child: Child) {
        if (child === trainer) {
            retire(child)
            return
        }
        child.waiting = true
        failures = 0
        logger.debug { "spare (pid ${child.pid}) waiting" }
        if (child.id == Child.SPARE) options.listener?.onEvent(WorkerEvent.SpareReady(child.pid))
    }

    /** Whether [child], which exited, was the training run (now off the books). */
    fun trainerExited(child: Child): Boolean {
        if (child !== trainer) return false
        trainer = null
        child.assignFd?.let(Fds::closeQuietly)
        child.assignFd = null
        return true
    }

    /** A spare died before it was assigned: another one takes its place, unless the supervisor is [stopping]. */
    fun exited(spare: Child, status: ExitStatus, stopping: Boolean) {
        val waited = idle.remove(spare)
        spare.assignFd?.let(Fds::closeQuietly)
        spare.assignFd = null
        val restarting = waited && !stopping
        if (restarting) {
            logger.warn { "spare (pid ${spare.pid}) $status before it was assigned, starting another" }
            schedule()
        } else {
            logger.info { "spare (pid ${spare.pid}) $status" }
        }
        options.listener?.onEvent(WorkerEvent.SpareExited(spare.pid, status, restarting))
    }

    /** For a rolling restart: as many new spares as there are, started now; returns the old ones, off the books, to be stopped. */
    fun renew(): List<Child> {
        val old = idle.toList()
        idle.clear()
        repeat(old.size) { start() }
        return old
    }

    /** The spares and the training run, taken off the books (their assignment pipes closed) to be stopped. */
    fun takeAll(): List<Child> {
        val all = idle.toList() + listOfNotNull(trainer)
        idle.clear()
        trainer = null
        all.forEach { child ->
            child.assignFd?.let(Fds::closeQuietly)
            child.assignFd = null
        }
        return all
    }

    private fun launchSpare(training: Boolean): Child {
        val assign = Fds.pipe()
        val process = try {
            launch(assign[0], training)
        } catch (e: IOException) {
            Fds.closeQuietly(assign[1])
            throw e
        } finally {
            Fds.closeQuietly(assign[0]) // the spare has its own copy
        }
        return Child(Child.SPARE, process, System.nanoTime(), assignFd = assign[1])
    }

    /** Ends a spare that waits for an id with status 0: `"retire"` on its assignment pipe. */
    private fun retire(spare: Child) {
        val fd = spare.assignFd ?: return
        spare.assignFd = null
        try {
            Fds.writeSmall(fd, "${WorkerRuntime.RETIRE}\n".toByteArray(), "the assignment pipe of pid ${spare.pid}")
        } catch (e: IOException) {
            logger.debug { "pid ${spare.pid} could not be retired (${e.message}): it is on its way out" }
        } finally {
            Fds.closeQuietly(fd)
        }
    }

    /** Starts a spare after 1 s, doubling up to 30 s while spares keep dying before they reach forkProcesses. */
    private fun schedule() {
        val delayMillis = minOf(RETRY_MILLIS shl minOf(failures, 5), RETRY_MAX_MILLIS)
        failures++
        later(delayMillis, SupervisorEvent.SpareDue)
    }

    private companion object {
        const val RETRY_MILLIS = 1_000L
        const val REFILL_MILLIS = 1_000L
        const val RETRY_MAX_MILLIS = 30_000L
    }
}
