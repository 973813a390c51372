package dev.prefork.supervisor

import dev.prefork.Subprocess
import kotlinx.coroutines.CompletableDeferred

/**
 * A worker JVM as the [Supervisor] keeps it; also a spare ([id] is [SPARE] until it takes one
 * over, [assignFd] the supervisor's end of its assignment pipe until then) and the start-up
 * archive's training run. Read and written on the supervisor's thread; the volatile fields are
 * read by [Supervisor.workerStatus] from any thread too.
 */
internal class Child(@Volatile var id: Int, val process: Subprocess, @Volatile var startedNanos: Long, var assignFd: Int? = null) {
    /** True once the worker said it is serving; false if it exited first. */
    val ready = CompletableDeferred<Boolean>()
    val pid: Long get() = process.pid

    /** When it last said anything on its ready pipe (a heartbeat, mostly); null: not yet. */
    var heardNanos: Long? = null

    /** Stopped for a missed heartbeat: its exit counts as a failure whatever its status. */
    var timedOut = false

    /** How long it may serve under [dev.prefork.ForkOptions.maxWorkerAge], its jitter drawn; null: for ever. */
    var ageLimitNanos: Long? = null

    /** Replaced for maxWorkerRss or maxWorkerAge; after a failed try, not again before [recycleNotBefore]. */
    var recycled = false
    var recycleNotBefore: Long? = null

    /** A spare that reached its forkProcesses, where it waits for an id. */
    var waiting = false

    /** It said it is ready (set on the supervisor's thread, as [ready] completes true). */
    @Volatile
    var serving = false

    /** Taken out of the pool by SIGTTOU: its exit ends it. */
    var removed = false

    /** During a rolling restart, the worker this one replaces until it said it is ready. */
    var replacing: Child? = null

    companion object {
        /** The id of a spare until it takes one over. */
        const val SPARE = -1
    }
}
