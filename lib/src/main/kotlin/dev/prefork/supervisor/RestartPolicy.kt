package dev.prefork.supervisor

/** What the supervisor does about one worker exit; see [RestartPolicy.onExit]. */
internal sealed interface Decision {
    /** Start worker [id] again, with the same id, after [delayNanos] (0: at once). */
    data class Restart(val id: Int, val delayNanos: Long) : Decision

    /** Worker [id] exited cleanly and is not restarted. */
    data class Retire(val id: Int) : Decision

    /**
     * The restart budget is spent: stop the survivors and throw TooManyRestartsException.
     * Once given up, every later exit is answered with [GiveUp] too.
     */
    data object GiveUp : Decision
}

/**
 * The supervisor's bookkeeping between exits. Immutable: [RestartPolicy.onExit] returns a new one.
 *
 * @property alive ids that are running or about to be restarted (a [Decision.Restart] keeps its id here).
 * @property retired ids that exited cleanly.
 * @property restarts restarts decided over the supervisor's lifetime.
 * @property restartTimes when the restarts still inside the window were decided (empty without a window).
 * @property consecutiveFailures per alive id, abnormal exits since it last counted as healthy; absent: 0.
 */
internal data class SupervisorState(
    val alive: Set<Int>,
    val retired: Set<Int>,
    val restarts: Int,
    val restartTimes: List<Long>,
    val consecutiveFailures: Map<Int, Int>,
    val gaveUp: Boolean,
) {
    /** Every worker exited cleanly: the supervisor exits 0. */
    val done: Boolean get() = alive.isEmpty() && !gaveUp
}

/**
 * The restart decision of the pre-fork supervisor: Tornado's `fork_processes`, plus Erlang/systemd
 * restart intensity and optional exponential backoff. A pure function of its inputs: no clock
 * reads, time is passed in as monotonic nanos (`System.nanoTime()`, compared by difference).
 *
 * Budget: without [restartWindowNanos], more than [maxRestarts] restarts over the lifetime give up,
 * as Tornado does (the `maxRestarts + 1`-th restart needed is refused). With it, a restart that
 * would make more than [maxRestarts] restarts decided in the last [restartWindowNanos] gives up
 * instead; a restart decided at `t` counts while `now - t < window`.
 *
 * Backoff: an id's k-th consecutive abnormal exit restarts after `min(initial * 2^(k-1), max)`.
 * A worker that ran at least [backoffMaxNanos] before failing counts as healthy, so that failure
 * is its first again (k = 1, delay [backoffInitialNanos]); a clean exit also resets the count. The
 * default, no backoff (both 0), restarts at once like Tornado.
 */
internal data class RestartPolicy(
    val maxRestarts: Int,
    val restartWindowNanos: Long? = null,
    val backoffInitialNanos: Long = 0L,
    val backoffMaxNanos: Long = backoffInitialNanos,
) {
    init {
        require(maxRestarts >= 0) { "maxRestarts < 0: $maxRestarts" }
        require(restartWindowNanos == null || restartWindowNanos > 0) {
            "restartWindowNanos <= 0: $restartWindowNanos"
        }
        require(backoffInitialNanos >= 0) { "backoffInitialNanos < 0: $backoffInitialNanos" }
        require(backoffMaxNanos >= backoffInitialNanos) {
            "backoffMaxNanos < backoffInitialNanos: $backoffMaxNanos < $backoffInitialNanos"
        }
    }

    /** The state right after starting workers `0 until n`. */
    fun initial(n: Int): SupervisorState {
        require(n >= 1) { "n < 1: $n" }
        return SupervisorState(
            alive = (0 until n).toSet(),
            retired = emptySet(),
            restarts = 0,
            restartTimes = emptyList(),
            consecutiveFailures = emptyMap(),
            gaveUp = false,
        )
    }

    /**
     * Decides what to do about worker [id] exiting, [clean]ly (status 0) or not (non-zero status or
     * a signal), after running [ranForNanos], at [nowNanos].
     *
     * @throws IllegalArgumentException if [id] is not alive in [state], or [ranForNanos] < 0.
     */
    fun onExit(
        state: SupervisorState,
        id: Int,
        clean: Boolean,
        ranForNanos: Long,
        nowNanos: Long,
    ): Pair<Decision, SupervisorState> {
        require(id in state.alive) { "worker $id is not alive: ${state.alive}" }
        require(ranForNanos >= 0) { "ranForNanos < 0: $ranForNanos" }
        val alive = state.alive - id
        val failures = state.consecutiveFailures - id

        if (state.gaveUp) return Decision.GiveUp to state.copy(alive = alive, consecutiveFailures = failures)

        if (clean) {
            return Decision.Retire(id) to state.copy(
                alive = alive,
                retired = state.retired + id,
                consecutiveFailures = failures,
            )
        }

        val recent = when (restartWindowNanos) {
            null -> state.restartTimes
            else -> state.restartTimes.filter { nowNanos - it < restartWindowNanos }
        }
        val spent = if (restartWindowNanos == null) state.restarts else recent.size
        if (spent >= maxRestarts) {
            return Decision.GiveUp to state.copy(alive = alive, consecutiveFailures = failures, gaveUp = true)
        }

        val k = if (ranForNanos >= backoffMaxNanos) 1 else (state.consecutiveFailures[id] ?: 0) + 1
        return Decision.Restart(id, backoffDelayNanos(k)) to state.copy(
            restarts = state.restarts + 1,
            restartTimes = if (restartWindowNanos == null) emptyList() else recent + nowNanos,
            consecutiveFailures = state.consecutiveFailures + (id to k),
        )
    }

    /** Worker [id] was added (SIGTTIN): alive from now on; no restart is counted. */
    fun onAdded(state: SupervisorState, id: Int): SupervisorState {
        require(id >= 0 && id !in state.alive) { "worker $id is alive already: ${state.alive}" }
        return state.copy(alive = state.alive + id, retired = state.retired - id, consecutiveFailures = state.consecutiveFailures - id)
    }

    /** Worker [id] was removed (SIGTTOU): no longer alive, so its exit decides nothing; the last one stays. */
    fun onRemoved(state: SupervisorState, id: Int): SupervisorState {
        require(id in state.alive) { "worker $id is not alive: ${state.alive}" }
        require(state.alive.size > 1) { "worker $id is the last one alive" }
        return state.copy(alive = state.alive - id, consecutiveFailures = state.consecutiveFailures - id)
    }

    /** `min(initial * 2^(k-1), max)` for the k-th consecutive failure, without overflowing. */
    fun backoffDelayNanos(k: Int): Long {
        require(k >= 1) { "k < 1: $k" }
        if (backoffInitialNanos == 0L) return 0L
        val shift = k - 1
        // initial shl shift stays positive while shift < the leading zero bits of initial.
        if (shift >= java.lang.Long.numberOfLeadingZeros(backoffInitialNanos)) return backoffMaxNanos
        return minOf(backoffInitialNanos shl shift, backoffMaxNanos)
    }
}
