package dev.prefork.supervisor

import dev.prefork.ForkOptions
import dev.prefork.log.logger
import dev.prefork.log.warn
import dev.prefork.nanosOrMax
import java.time.Duration
import java.util.concurrent.ThreadLocalRandom

private val logger = logger("dev.prefork.supervisor.Supervisor")

/**
 * The limits a worker is held to, [ForkOptions.workerTimeout] (heartbeats),
 * [ForkOptions.maxWorkerRss] and [ForkOptions.maxWorkerAge], and which workers are past them.
 * It only judges; the [Supervisor] stops or replaces the workers it names.
 */
internal class WorkerLimits(private val options: ForkOptions) {
    private val timeoutNanos: Long? = options.workerTimeout?.nanosOrMax()

    /** How often workers are told to beat: a quarter of [ForkOptions.workerTimeout], at most every second; null: no heartbeats. */
    val heartbeatMillis: Long? = timeoutNanos?.let { (it / 4 / 1_000_000).coerceIn(MIN_HEARTBEAT_MILLIS, MAX_CHECK_MILLIS) }

    /** Until it is ready, a worker has the ready timeout if that is longer: a health check may fail while its server starts. */
    private val startGraceNanos: Long? = timeoutNanos?.let { maxOf(it, options.readyTimeout.nanosOrMax()) }

    private val ageNanos: Long? = options.maxWorkerAge?.nanosOrMax()

    /** When memory and age were last looked at: every second, however often heartbeats are checked. */
    private var recycleCheckedNanos = System.nanoTime()

    /** How often the supervisor looks at its workers; null: no limit is set, never. */
    val checkEveryMillis: Long? =
        if (timeoutNanos != null || options.maxWorkerRss > 0 || ageNanos != null) heartbeatMillis ?: MAX_CHECK_MILLIS else null

    /** The workers silent past their timeout (until it is ready, a worker has the ready timeout, if longer), each with how long. */
    fun silent(workers: Collection<Child>, now: Long): List<Pair<Child, Duration>> {
        val timeout = timeoutNanos ?: return emptyList()
        val grace = startGraceNanos ?: return emptyList()
        return workers.mapNotNull { worker ->
            if (worker.timedOut || worker.process.returnCode != null) return@mapNotNull null
            val silent = now - (worker.heardNanos ?: worker.startedNanos)
            if (silent > if (worker.serving) timeout else grace) worker to Duration.ofNanos(silent) else null
        }
    }

    /**
     * The serving worker to recycle now, past [ForkOptions.maxWorkerRss] or
     * [ForkOptions.maxWorkerAge], with why; null: none, or looked at less than a second ago. The
     * oldest first, so that while one old worker drains, its young replacement cannot jump the
     * queue ahead of the others. While [busy] (a replacement runs), none: the check still counts
     * as made, so the next one comes a second later.
     */
    fun dueForRecycling(workers: Collection<Child>, now: Long, busy: Boolean): Pair<Child, String>? {
        if (options.maxWorkerRss <= 0 && ageNanos == null) return null
        if (now - recycleCheckedNanos < MAX_CHECK_MILLIS * 1_000_000) return null
        recycleCheckedNanos = now
        if (busy) return null
        for (worker in workers.sortedBy { it.startedNanos - now }) {
            if (!worker.serving || worker.timedOut || worker.removed || worker.replacing != null) continue
            if (worker.recycleNotBefore?.let { now - it < 0 } == true) continue
            return worker to (recycleReason(worker, now) ?: continue)
        }
        return null
    }

    private fun recycleReason(worker: Child, now: Long): String? {
        val age = now - worker.startedNanos
        val limit = worker.ageLimitNanos
        if (limit != null && age >= limit) return "up ${Duration.ofNanos(age).toMillis()} ms, past maxWorkerAge ${options.maxWorkerAge} (+${Duration.ofNanos(limit - ageNanos!!).toMillis()} ms jitter)"
        if (options.maxWorkerRss > 0) {
            val rss = ProcStat.rssBytes(worker.pid)
            if (rss > options.maxWorkerRss) return "RSS ${rss / MIB} MiB, past maxWorkerRss ${options.maxWorkerRss / MIB} MiB"
        }
        return null
    }

    /** After [worker]'s replacement failed: not tried again for [RECYCLE_RETRY_MILLIS]. */
    fun recyclingFailed(worker: Child) {
        worker.recycled = false
        worker.recycleNotBefore = System.nanoTime() + RECYCLE_RETRY_MILLIS * 1_000_000
    }

    /** After [worker] was recycled, having served [ranMillis]: so soon for its memory hints at a limit set too low. */
    fun recycled(worker: Child, ranMillis: Long) {
        if (options.maxWorkerRss > 0 && ranMillis < SHORT_LIFE_MILLIS) {
            logger.warn { "child ${worker.id} was recycled $ranMillis ms after it started: is maxWorkerRss (${options.maxWorkerRss / MIB} MiB) below what a worker needs?" }
        }
    }

    /** A new worker's share of [ForkOptions.maxWorkerAge]: the age plus a random part of the jitter; null: for ever. */
    fun ageLimit(): Long? = ageNanos?.let { age ->
        val jitter = options.maxWorkerAgeJitter.nanosOrMax()
        val limit = age + if (jitter > 0) ThreadLocalRandom.current().nextLong(jitter) else 0
        if (limit < 0) Long.MAX_VALUE else limit // past 292 years: for ever
    }

    private companion object {
        /** Heartbeats and recycling checks: at most every second, and heartbeats at least every 25 ms. */
        const val MAX_CHECK_MILLIS = 1_000L
        const val MIN_HEARTBEAT_MILLIS = 25L

        /** After a failed recycling try, the same worker is not tried again for this long. */
        const val RECYCLE_RETRY_MILLIS = 30_000L

        /** A worker recycled for its memory this soon after it started hints at a limit set too low. */
        const val SHORT_LIFE_MILLIS = 60_000L
        const val MIB = 1024L * 1024L
    }
}
