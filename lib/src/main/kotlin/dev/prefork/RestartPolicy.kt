package dev.prefork

/**
 * What the supervisor does about one worker exit; see [RestartPolicy.onExit].
 * New kinds may be added in later versions: a `when` over it should have an `else` branch.
 */
public sealed interface RestartDecision {
    /**
     * Start worker [id] again, with the same id, after [delayNanos] (0: at once).
     *
     * @property id the task id to start again.
     * @property delayNanos the backoff before the start, in nanoseconds; 0 without backoff.
     */
    public data class Restart(@get:JvmName("id") public val id: Int, @get:JvmName("delayNanos") public val delayNanos: Long) : RestartDecision

    /**
     * Worker [id] exited cleanly and is not restarted.
     *
     * @property id the task id that is done: no worker runs with it any more.
     */
    public data class Retire(@get:JvmName("id") public val id: Int) : RestartDecision

    /**
     * The restart budget is spent: the supervisor stops the survivors and `forkProcesses`
     * throws [TooManyRestartsException]. Once given up, every later exit is answered with
     * [GiveUp] too.
     */
    public data object GiveUp : RestartDecision
}

/**
 * The supervisor's bookkeeping between exits. Immutable: [RestartPolicy.onExit] returns a new one.
 *
 * @property alive ids that are running or about to be restarted (a [RestartDecision.Restart] keeps its id here).
 * @property retired ids that exited cleanly.
 * @property restarts restarts decided over the supervisor's lifetime.
 * @property restartTimes when the restarts still inside the window were decided (empty without a window).
 * @property consecutiveFailures per alive id, abnormal exits since it last counted as healthy; absent: 0.
 * @property gaveUp whether the budget was spent: every later exit is answered with [RestartDecision.GiveUp].
 */
@ConsistentCopyVisibility
public data class RestartState internal constructor(
    @get:JvmName("alive") public val alive: Set<Int>,
    @get:JvmName("retired") public val retired: Set<Int>,
    @get:JvmName("restarts") public val restarts: Int,
    @get:JvmName("restartTimes") public val restartTimes: List<Long>,
    @get:JvmName("consecutiveFailures") public val consecutiveFailures: Map<Int, Int>,
    @get:JvmName("gaveUp") public val gaveUp: Boolean,
) {
    /** Every worker exited cleanly: the supervisor exits 0. */
    @get:JvmName("done")
    public val done: Boolean get() = alive.isEmpty() && !gaveUp
}

/**
 * One exit's outcome: what to do, and the state to pass to the next call. In Kotlin it
 * destructures: `val (decision, next) = policy.onExit(...)`; Java reads `decision()` and `state()`.
 *
 * @property decision what the supervisor does about the exit.
 * @property state the bookkeeping after it, for the next [RestartPolicy.onExit].
 */
public data class RestartStep(
    @get:JvmName("decision") public val decision: RestartDecision,
    @get:JvmName("state") public val state: RestartState,
)

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
 *
 * The supervisor makes every restart decision with this very function, built by [of] from its
 * [ForkOptions]; tests of a configuration can drive it the same way, with a clock of their own
 * (any `Long` that only grows), to prove for instance that a crash loop gives up within 10 s.
 * Exits the supervisor causes itself (a rolling restart, recycling, a removed worker) are not
 * exits here; a worker stopped for a missed heartbeat ([ForkOptions.Builder.workerTimeout]) is
 * an abnormal exit like a crash.
 *
 * @property maxRestarts the restart budget: over the lifetime, or within [restartWindowNanos].
 * @property restartWindowNanos the span the budget applies to, in nanoseconds; null: the lifetime.
 * @property backoffInitialNanos the delay before an id's first consecutive restart; 0: none.
 * @property backoffMaxNanos the delay the doubling stops at, and the run time after which a failure counts as a first again.
 */
public data class RestartPolicy @JvmOverloads constructor(
    @get:JvmName("maxRestarts") public val maxRestarts: Int,
    @get:JvmName("restartWindowNanos") public val restartWindowNanos: Long? = null,
    @get:JvmName("backoffInitialNanos") public val backoffInitialNanos: Long = 0L,
    @get:JvmName("backoffMaxNanos") public val backoffMaxNanos: Long = backoffInitialNanos,
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

    /** Holds [of] (Java: `RestartPolicy.of(options)`, a static method). */
    public companion object {
        /** The policy the supervisor applies for [options]: its restart budget, window and backoff. */
        @JvmStatic
        public fun of(options: ForkOptions): RestartPolicy = RestartPolicy(
            maxRestarts = options.maxRestarts,
            restartWindowNanos = options.restartWindow?.nanosOrMax(),
            backoffInitialNanos = options.backoffInitial.nanosOrMax(),
            backoffMaxNanos = options.backoffMax.nanosOrMax(),
        )
    }

    /** The state right after starting workers `0 until n` (the supervisor's n: [ForkOptions.numProcesses], or [cpuCount] for 0). */
    public fun initial(n: Int): RestartState {
        require(n >= 1) { "n < 1: $n" }
        return RestartState(
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
    public fun onExit(
        state: RestartState,
        id: Int,
        clean: Boolean,
        ranForNanos: Long,
        nowNanos: Long,
    ): RestartStep {
        require(id in state.alive) { "worker $id is not alive: ${state.alive}" }
        require(ranForNanos >= 0) { "ranForNanos < 0: $ranForNanos" }
        val alive = state.alive - id
        val failures = state.consecutiveFailures - id

        if (state.gaveUp) return RestartStep(RestartDecision.GiveUp, state.copy(alive = alive, consecutiveFailures = failures))

        if (clean) {
            return RestartStep(
                RestartDecision.Retire(id),
                state.copy(alive = alive, retired = state.retired + id, consecutiveFailures = failures),
            )
        }

        val recent = when (restartWindowNanos) {
            null -> state.restartTimes
            else -> state.restartTimes.filter { nowNanos - it < restartWindowNanos }
        }
        val spent = if (restartWindowNanos == null) state.restarts else recent.size
        if (spent >= maxRestarts) {
            return RestartStep(RestartDecision.GiveUp, state.copy(alive = alive, consecutiveFailures = failures, gaveUp = true))
        }

        val k = if (ranForNanos >= backoffMaxNanos) 1 else (state.consecutiveFailures[id] ?: 0) + 1
        return RestartStep(
            RestartDecision.Restart(id, backoffDelayNanos(k)),
            state.copy(
                restarts = state.restarts + 1,
                restartTimes = if (restartWindowNanos == null) emptyList() else recent + nowNanos,
                consecutiveFailures = state.consecutiveFailures + (id to k),
            ),
        )
    }

    /** Worker [id] was added (SIGTTIN): alive from now on; no restart is counted. */
    public fun onAdded(state: RestartState, id: Int): RestartState {
        require(id >= 0) { "worker id < 0: $id" }
        require(id !in state.alive) { "worker $id is alive already: ${state.alive}" }
        return state.copy(alive = state.alive + id, retired = state.retired - id, consecutiveFailures = state.consecutiveFailures - id)
    }

    /** Worker [id] was removed (SIGTTOU): no longer alive, so its exit decides nothing; the last one stays. */
    public fun onRemoved(state: RestartState, id: Int): RestartState {
        require(id in state.alive) { "worker $id is not alive: ${state.alive}" }
        require(state.alive.size > 1) { "worker $id is the last one alive" }
        return state.copy(alive = state.alive - id, consecutiveFailures = state.consecutiveFailures - id)
    }

    /** `min(initial * 2^(k-1), max)` for the k-th consecutive failure, without overflowing. */
    public fun backoffDelayNanos(k: Int): Long {
        require(k >= 1) { "k < 1: $k" }
        if (backoffInitialNanos == 0L) return 0L
        val shift = k - 1
        // initial shl shift stays positive while shift < the leading zero bits of initial.
        if (shift >= java.lang.Long.numberOfLeadingZeros(backoffInitialNanos)) return backoffMaxNanos
        return minOf(backoffInitialNanos shl shift, backoffMaxNanos)
    }
}
