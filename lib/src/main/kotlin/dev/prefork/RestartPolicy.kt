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

/** Why a [RestartPolicy] gave up; see [RestartState.gaveUpReason]. */
public enum class GiveUpReason {
    /** More restarts than [RestartPolicy.maxRestarts] allows (over the lifetime, or within the window). */
    RESTARTS,

    /**
     * Every alive worker failed its last [RestartPolicy.startFailureLimit] starts in a row: each
     * exited abnormally before it was ready, so no restart can be expected to serve.
     */
    STARTS,
}

/**
 * The supervisor's bookkeeping between exits. Immutable: [RestartPolicy.onExit] returns a new one.
 *
 * @property alive ids that are running or about to be restarted (a [RestartDecision.Restart] keeps its id here).
 * @property retired ids that exited cleanly.
 * @property restarts restarts decided over the supervisor's lifetime.
 * @property restartTimes when the restarts still inside the window were decided (empty without a window).
 * @property consecutiveFailures per alive id, abnormal exits since it last counted as healthy; absent: 0.
 * @property failedStarts per alive id, abnormal exits before it was ready since it last was; absent: 0.
 * @property gaveUpReason why the budget was spent, or null while it is not: once given up, every later exit is answered with [RestartDecision.GiveUp].
 */
public class RestartState internal constructor(
    @get:JvmName("alive") public val alive: Set<Int>,
    @get:JvmName("retired") public val retired: Set<Int>,
    @get:JvmName("restarts") public val restarts: Int,
    @get:JvmName("restartTimes") public val restartTimes: List<Long>,
    @get:JvmName("consecutiveFailures") public val consecutiveFailures: Map<Int, Int>,
    @get:JvmName("failedStarts") public val failedStarts: Map<Int, Int>,
    @get:JvmName("gaveUpReason") public val gaveUpReason: GiveUpReason?,
) {
    /** Whether the budget was spent: every later exit is answered with [RestartDecision.GiveUp]. */
    @get:JvmName("gaveUp")
    public val gaveUp: Boolean get() = gaveUpReason != null

    /** Every worker exited cleanly: the supervisor exits 0. */
    @get:JvmName("done")
    public val done: Boolean get() = alive.isEmpty() && !gaveUp

    internal fun copy(
        alive: Set<Int> = this.alive,
        retired: Set<Int> = this.retired,
        restarts: Int = this.restarts,
        restartTimes: List<Long> = this.restartTimes,
        consecutiveFailures: Map<Int, Int> = this.consecutiveFailures,
        failedStarts: Map<Int, Int> = this.failedStarts,
        gaveUpReason: GiveUpReason? = this.gaveUpReason,
    ): RestartState = RestartState(alive, retired, restarts, restartTimes, consecutiveFailures, failedStarts, gaveUpReason)

    override fun equals(other: Any?): Boolean = other is RestartState && alive == other.alive && retired == other.retired &&
        restarts == other.restarts && restartTimes == other.restartTimes && consecutiveFailures == other.consecutiveFailures &&
        failedStarts == other.failedStarts && gaveUpReason == other.gaveUpReason

    override fun hashCode(): Int = listOf(alive, retired, restarts, restartTimes, consecutiveFailures, failedStarts, gaveUpReason).hashCode()

    override fun toString(): String =
        "RestartState(alive=$alive, retired=$retired, restarts=$restarts, restartTimes=$restartTimes, " +
            "consecutiveFailures=$consecutiveFailures, failedStarts=$failedStarts, gaveUpReason=$gaveUpReason)"
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
 * Failed starts: a worker that exits abnormally before it was ready (before it called
 * `Worker.ready()` with [ForkOptions.Builder.explicitReady], before `forkProcesses` returned in
 * it otherwise) failed to start. When every alive id failed its last [startFailureLimit] starts
 * in a row, the application cannot start at all (a port in use, a missing class, a bad
 * configuration): the policy gives up at once ([GiveUpReason.STARTS]) rather than spend the rest
 * of the budget on starts that fail the same way. An id that gets ready again counts from 0.
 * While one worker serves, the others' failed starts are ordinary crashes, under the budget.
 * With a backoff the rule is off: a backoff asks to retry with time in between (a database that
 * is down while the application starts, say), and the budget alone decides.
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
 * @property startFailureLimit failed starts in a row, of every alive id, after which the policy gives up; 0: never for that (nor with a backoff).
 */
public data class RestartPolicy @JvmOverloads constructor(
    @get:JvmName("maxRestarts") public val maxRestarts: Int,
    @get:JvmName("restartWindowNanos") public val restartWindowNanos: Long? = null,
    @get:JvmName("backoffInitialNanos") public val backoffInitialNanos: Long = 0L,
    @get:JvmName("backoffMaxNanos") public val backoffMaxNanos: Long = backoffInitialNanos,
    @get:JvmName("startFailureLimit") public val startFailureLimit: Int = DEFAULT_START_FAILURE_LIMIT,
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
        require(startFailureLimit >= 0) { "startFailureLimit < 0: $startFailureLimit" }
    }

    /** Holds [of] (Java: `RestartPolicy.of(options)`, a static method). */
    public companion object {
        /** [startFailureLimit]'s default: every worker failed to start 3 times in a row. */
        public const val DEFAULT_START_FAILURE_LIMIT: Int = 3

        /** The policy the supervisor applies for [options]: its restart budget, window and backoff. */
        @JvmStatic
        public fun of(options: ForkOptions): RestartPolicy = RestartPolicy(
            maxRestarts = options.maxRestarts,
            restartWindowNanos = options.restartWindow?.nanosOrMax(),
            backoffInitialNanos = options.backoffInitial.nanosOrMax(),
            backoffMaxNanos = options.backoffMax.nanosOrMax(),
            startFailureLimit = options.startFailureLimit,
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
            failedStarts = emptyMap(),
            gaveUpReason = null,
        )
    }

    /**
     * Decides what to do about worker [id] exiting, [clean]ly (status 0) or not (non-zero status or
     * a signal), after running [ranForNanos], at [nowNanos]; [ready]: whether it had said it was
     * ready before it exited (false: a failed start, when the exit is abnormal). [ready] defaults
     * to true, as a policy test written before it existed meant: such a test never sees
     * [GiveUpReason.STARTS]; pass false to play starts that fail.
     *
     * @throws IllegalArgumentException if [id] is not alive in [state], or [ranForNanos] < 0.
     */
    @JvmOverloads
    public fun onExit(
        state: RestartState,
        id: Int,
        clean: Boolean,
        ranForNanos: Long,
        nowNanos: Long,
        ready: Boolean = true,
    ): RestartStep {
        require(id in state.alive) { "worker $id is not alive: ${state.alive}" }
        require(ranForNanos >= 0) { "ranForNanos < 0: $ranForNanos" }
        val alive = state.alive - id
        val failures = state.consecutiveFailures - id
        val startsOfOthers = state.failedStarts - id

        if (state.gaveUp) {
            return RestartStep(RestartDecision.GiveUp, state.copy(alive = alive, consecutiveFailures = failures, failedStarts = startsOfOthers))
        }

        if (clean) {
            return RestartStep(
                RestartDecision.Retire(id),
                state.copy(alive = alive, retired = state.retired + id, consecutiveFailures = failures, failedStarts = startsOfOthers),
            )
        }

        val failedStarts = if (ready) startsOfOthers else startsOfOthers + (id to (state.failedStarts[id] ?: 0) + 1)
        if (!ready && startFailureLimit > 0 && backoffInitialNanos == 0L && state.alive.all { (failedStarts[it] ?: 0) >= startFailureLimit }) {
            return RestartStep(
                RestartDecision.GiveUp,
                state.copy(alive = alive, consecutiveFailures = failures, failedStarts = failedStarts, gaveUpReason = GiveUpReason.STARTS),
            )
        }

        val recent = when (restartWindowNanos) {
            null -> state.restartTimes
            else -> state.restartTimes.filter { nowNanos - it < restartWindowNanos }
        }
        val spent = if (restartWindowNanos == null) state.restarts else recent.size
        if (spent >= maxRestarts) {
            return RestartStep(
                RestartDecision.GiveUp,
                state.copy(alive = alive, consecutiveFailures = failures, failedStarts = failedStarts, gaveUpReason = GiveUpReason.RESTARTS),
            )
        }

        val k = if (ranForNanos >= backoffMaxNanos) 1 else (state.consecutiveFailures[id] ?: 0) + 1
        return RestartStep(
            RestartDecision.Restart(id, backoffDelayNanos(k)),
            state.copy(
                restarts = state.restarts + 1,
                restartTimes = if (restartWindowNanos == null) emptyList() else recent + nowNanos,
                consecutiveFailures = state.consecutiveFailures + (id to k),
                failedStarts = failedStarts,
            ),
        )
    }

    /** Worker [id] said it is ready: its failed starts are behind it. */
    public fun onReady(state: RestartState, id: Int): RestartState {
        require(id in state.alive) { "worker $id is not alive: ${state.alive}" }
        return if (id in state.failedStarts) state.copy(failedStarts = state.failedStarts - id) else state
    }

    /** Worker [id] was added (SIGTTIN): alive from now on; no restart is counted. */
    public fun onAdded(state: RestartState, id: Int): RestartState {
        require(id >= 0) { "worker id < 0: $id" }
        require(id !in state.alive) { "worker $id is alive already: ${state.alive}" }
        return state.copy(
            alive = state.alive + id,
            retired = state.retired - id,
            consecutiveFailures = state.consecutiveFailures - id,
            failedStarts = state.failedStarts - id,
        )
    }

    /** Worker [id] was removed (SIGTTOU): no longer alive, so its exit decides nothing; the last one stays. */
    public fun onRemoved(state: RestartState, id: Int): RestartState {
        require(id in state.alive) { "worker $id is not alive: ${state.alive}" }
        require(state.alive.size > 1) { "worker $id is the last one alive" }
        return state.copy(alive = state.alive - id, consecutiveFailures = state.consecutiveFailures - id, failedStarts = state.failedStarts - id)
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
