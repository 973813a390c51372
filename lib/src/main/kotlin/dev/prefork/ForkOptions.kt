package dev.prefork

import java.time.Duration

/**
 * How [forkProcesses] runs its workers. Build with [ForkOptions.builder]; every setting has
 * Tornado's default except the ones Tornado lacks (graceful stop, window, backoff, listener).
 */
public class ForkOptions private constructor(builder: Builder) {
    /** Workers to start; 0 or less means [cpuCount]. */
    @get:JvmName("numProcesses")
    public val numProcesses: Int = builder.numProcesses

    /** Abnormal exits that may be restarted (in total, or within [restartWindow]) before giving up. */
    @get:JvmName("maxRestarts")
    public val maxRestarts: Int = builder.maxRestarts

    /** With a window, at most [maxRestarts] restarts within any such span (Erlang/systemd style); null: over the whole run. */
    @get:JvmName("restartWindow")
    public val restartWindow: Duration? = builder.restartWindow

    /** Delay before a worker's first consecutive restart; doubles up to [backoffMax]. Zero: restart at once. */
    @get:JvmName("backoffInitial")
    public val backoffInitial: Duration = builder.backoffInitial

    @get:JvmName("backoffMax")
    public val backoffMax: Duration = builder.backoffMax

    /** How long workers get between SIGTERM and SIGKILL when the supervisor stops or replaces them. */
    @get:JvmName("gracefulTimeout")
    public val gracefulTimeout: Duration = builder.gracefulTimeout

    /** The command that starts a worker, instead of re-executing this JVM's own command line. */
    @get:JvmName("workerCommand")
    public val workerCommand: List<String>? = builder.workerCommand

    @get:JvmName("listener")
    public val listener: WorkerListener? = builder.listener

    public fun toBuilder(): Builder = Builder().also {
        it.numProcesses = numProcesses
        it.maxRestarts = maxRestarts
        it.restartWindow = restartWindow
        it.backoffInitial = backoffInitial
        it.backoffMax = backoffMax
        it.gracefulTimeout = gracefulTimeout
        it.workerCommand = workerCommand
        it.listener = listener
    }

    public class Builder internal constructor() {
        internal var numProcesses = 0
        internal var maxRestarts = 100
        internal var restartWindow: Duration? = null
        internal var backoffInitial: Duration = Duration.ZERO
        internal var backoffMax: Duration = Duration.ZERO
        internal var gracefulTimeout: Duration = Duration.ofSeconds(30)
        internal var workerCommand: List<String>? = null
        internal var listener: WorkerListener? = null

        public fun numProcesses(n: Int): Builder = apply { numProcesses = n }

        public fun maxRestarts(n: Int): Builder = apply {
            require(n >= 0) { "maxRestarts < 0: $n" }
            maxRestarts = n
        }

        public fun restartWindow(window: Duration?): Builder = apply {
            require(window == null || (!window.isNegative && !window.isZero)) { "restartWindow <= 0: $window" }
            restartWindow = window
        }

        public fun backoff(initial: Duration, max: Duration): Builder = apply {
            require(!initial.isNegative) { "backoff initial < 0: $initial" }
            require(max >= initial) { "backoff max < initial: $max < $initial" }
            backoffInitial = initial
            backoffMax = max
        }

        public fun gracefulTimeout(timeout: Duration): Builder = apply {
            require(!timeout.isNegative) { "gracefulTimeout < 0: $timeout" }
            gracefulTimeout = timeout
        }

        /**
         * Starts workers with [command] instead of this JVM's own command line (for launchers
         * that cannot be re-executed). The command must run the same `main`; to adopt more than
         * one inherited socket it must pass `--add-opens java.base/sun.nio.ch=ALL-UNNAMED` to the JVM.
         */
        public fun workerCommand(command: List<String>): Builder = apply {
            require(command.isNotEmpty()) { "workerCommand is empty" }
            workerCommand = command.toList()
        }

        public fun workerCommand(vararg command: String): Builder = workerCommand(command.toList())

        /** Told of every worker start and exit, on the supervisor's thread: keep it short. */
        public fun listener(listener: WorkerListener): Builder = apply { this.listener = listener }

        public fun build(): ForkOptions = ForkOptions(this)
    }

    override fun toString(): String =
        "ForkOptions(numProcesses=$numProcesses, maxRestarts=$maxRestarts, restartWindow=$restartWindow, " +
            "backoff=$backoffInitial..$backoffMax, gracefulTimeout=$gracefulTimeout, workerCommand=$workerCommand)"

    public companion object {
        @JvmStatic
        public fun builder(): Builder = Builder()
    }
}

/** A worker's life as the supervisor sees it; see [ForkOptions.Builder.listener]. */
public sealed class WorkerEvent(
    /** The worker's task id, in `0 until numProcesses`. */
    @get:JvmName("id") public val id: Int,
    @get:JvmName("pid") public val pid: Long,
) {
    public class Started internal constructor(id: Int, pid: Long) : WorkerEvent(id, pid) {
        override fun toString(): String = "child $id (pid $pid) started"
    }

    /** The worker ended with [status]; [restarting] says whether a replacement with the same id follows. */
    public class Exited internal constructor(
        id: Int,
        pid: Long,
        @get:JvmName("status") public val status: ExitStatus,
        @get:JvmName("restarting") public val restarting: Boolean,
    ) : WorkerEvent(id, pid) {
        override fun toString(): String = "child $id (pid $pid) $status" + if (restarting) ", restarting" else ""
    }
}

public fun interface WorkerListener {
    public fun onEvent(event: WorkerEvent)
}
