package dev.prefork

import java.time.Duration

/**
 * A worker's life as the supervisor sees it; see [ForkOptions.Builder.listener]. Later versions
 * may add kinds of event: a `when` over them should end with an `else` branch.
 */
public sealed class WorkerEvent(
    /** The worker's task id, in `0 until numProcesses`; [NO_ID] for the events of a spare that has none yet. */
    @get:JvmName("id") public val id: Int,
    /** The worker's (or spare's) process id. */
    @get:JvmName("pid") public val pid: Long,
) {
    /** Worker [id] runs as [pid]: a new JVM, or a spare that took the id over ([fromSpare]). */
    public class Started internal constructor(
        id: Int,
        pid: Long,
        /** True when a waiting spare took the id over, so no new JVM had to start. */
        @get:JvmName("fromSpare") public val fromSpare: Boolean = false,
    ) : WorkerEvent(id, pid) {
        /** `child 0 (pid 41) started`, as a log line. */
        override fun toString(): String = "child $id (pid $pid) started" + if (fromSpare) " (a spare took over)" else ""
    }

    /** A spare reached `forkProcesses`, warmed up if it does so, and waits there for an id. */
    public class SpareReady internal constructor(pid: Long) : WorkerEvent(NO_ID, pid) {
        /** `spare (pid 41) waiting`, as a log line. */
        override fun toString(): String = "spare (pid $pid) waiting"
    }

    /** A spare JVM was started; it has no id until it takes over from a worker (then [Started] follows, with its pid). */
    public class SpareStarted internal constructor(pid: Long) : WorkerEvent(NO_ID, pid) {
        /** `spare (pid 41) started`, as a log line. */
        override fun toString(): String = "spare (pid $pid) started"
    }

    /** A spare ended with [status] before it took over any id; [restarting] says whether another spare is started for it. */
    public class SpareExited internal constructor(
        pid: Long,
        /** How the spare ended. */
        @get:JvmName("status") public val status: ExitStatus,
        /** Whether another spare is started in its place. */
        @get:JvmName("restarting") public val restarting: Boolean,
    ) : WorkerEvent(NO_ID, pid) {
        /** `spare (pid 41) exited with status 1, restarting`, as a log line. */
        override fun toString(): String = "spare (pid $pid) $status" + if (restarting) ", restarting" else ""
    }

    /** The worker is serving: `forkProcesses` returned in it, or it called [Worker.ready] (see [ForkOptions.explicitReady]). */
    public class Ready internal constructor(id: Int, pid: Long) : WorkerEvent(id, pid) {
        /** `child 0 (pid 41) ready`, as a log line. */
        override fun toString(): String = "child $id (pid $pid) ready"
    }

    /** The worker ended with [status]; [restarting] says whether a replacement with the same id follows. */
    public class Exited internal constructor(
        id: Int,
        pid: Long,
        /** How the worker ended: exit code or signal, CPU time, peak RSS. */
        @get:JvmName("status") public val status: ExitStatus,
        /** Whether a replacement with the same id follows (false: a clean exit, a stop, or the restarts ran out). */
        @get:JvmName("restarting") public val restarting: Boolean,
    ) : WorkerEvent(id, pid) {
        /** `child 0 (pid 41) killed by signal 9, restarting`, as a log line. */
        override fun toString(): String = "child $id (pid $pid) $status" + if (restarting) ", restarting" else ""
    }

    /** Worker [id] was added to the pool (SIGTTIN, or [dev.prefork.addWorker]) and runs as [pid]. */
    public class Added internal constructor(id: Int, pid: Long) : WorkerEvent(id, pid) {
        /** `child 4 (pid 41) added`, as a log line. */
        override fun toString(): String = "child $id (pid $pid) added"
    }

    /**
     * Worker [id], the highest, was taken out of the pool (SIGTTOU, or [dev.prefork.removeWorker])
     * and is stopped gracefully; [pid] is -1 when it was not running (a restart was pending).
     */
    public class Removed internal constructor(id: Int, pid: Long) : WorkerEvent(id, pid) {
        /** `child 4 (pid 41) removed`, as a log line. */
        override fun toString(): String = "child $id (pid $pid) removed"
    }

    /**
     * Worker [id] sent no heartbeat for [silentFor], past [ForkOptions.workerTimeout] (stopped,
     * frozen, or its [Worker.healthCheck] failing): it gets SIGTERM, SIGKILL after the graceful
     * timeout, and its [Exited] follows, restarting as a crash would (a rolling restart's
     * replacement not ready yet is dropped instead, and the worker it was to replace kept).
     */
    public class TimedOut internal constructor(
        id: Int,
        pid: Long,
        /** How long the worker had been silent when the supervisor noticed: at least [ForkOptions.workerTimeout]. */
        @get:JvmName("silentFor") public val silentFor: Duration,
    ) : WorkerEvent(id, pid) {
        /** `child 0 (pid 41) timed out, silent for 5012 ms`, as a log line. */
        override fun toString(): String = "child $id (pid $pid) timed out, silent for ${silentFor.toMillis()} ms"
    }

    /**
     * Worker [id] passed [ForkOptions.maxWorkerRss] or [ForkOptions.maxWorkerAge] ([reason] says
     * which, and by how much): a replacement with its id is started, and this one is stopped
     * gracefully once the replacement serves. Not a restart.
     */
    public class Recycled internal constructor(
        id: Int,
        pid: Long,
        /** Which limit the worker passed and by how much, in words for a log. */
        @get:JvmName("reason") public val reason: String,
    ) : WorkerEvent(id, pid) {
        /** `child 0 (pid 41) recycled: ` and the [reason], as a log line. */
        override fun toString(): String = "child $id (pid $pid) recycled: $reason"
    }

    /** Holds [NO_ID] (Java: `WorkerEvent.NO_ID`). */
    public companion object {
        /** The [id] of a spare's events: it has no task id yet. */
        public const val NO_ID: Int = -1
    }
}

/**
 * Told of each [WorkerEvent] of the supervisor it was given to ([ForkOptions.Builder.listener]).
 * A lambda in Kotlin and Java alike.
 */
public fun interface WorkerListener {
    /** Runs on the supervisor's own thread, one event at a time and in order: keep it short, and do not block. */
    public fun onEvent(event: WorkerEvent)
}
