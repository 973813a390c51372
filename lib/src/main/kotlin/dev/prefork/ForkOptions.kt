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

    /** Whether every worker also gets the first shared listening socket as its fd 0 ([System.inheritedChannel]). */
    @get:JvmName("inheritedChannel")
    public val inheritedChannel: Boolean = builder.inheritedChannel

    /** Whether a worker counts as serving only once it calls [Worker.ready], rather than when `forkProcesses` returns in it. */
    @get:JvmName("explicitReady")
    public val explicitReady: Boolean = builder.explicitReady

    /** How long a rolling restart waits for a replacement to be ready before it gives up on it and keeps the old worker. */
    @get:JvmName("readyTimeout")
    public val readyTimeout: Duration = builder.readyTimeout

    /** How long a worker that got SIGTERM waits for the connections it accepted to close before its JVM exits. */
    @get:JvmName("drainTimeout")
    public val drainTimeout: Duration = builder.drainTimeout

    public fun toBuilder(): Builder = Builder().also {
        it.numProcesses = numProcesses
        it.maxRestarts = maxRestarts
        it.restartWindow = restartWindow
        it.backoffInitial = backoffInitial
        it.backoffMax = backoffMax
        it.gracefulTimeout = gracefulTimeout
        it.workerCommand = workerCommand
        it.listener = listener
        it.inheritedChannel = inheritedChannel
        it.explicitReady = explicitReady
        it.readyTimeout = readyTimeout
        it.drainTimeout = drainTimeout
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
        internal var inheritedChannel = false
        internal var explicitReady = false
        internal var readyTimeout: Duration = Duration.ofSeconds(60)
        internal var drainTimeout: Duration = Duration.ofSeconds(10)

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

        /** Told of every worker start, readiness and exit, on the supervisor's thread: keep it short. */
        public fun listener(listener: WorkerListener): Builder = apply { this.listener = listener }

        /**
         * Also puts the first socket bound with `bindSockets` before `forkProcesses` on every
         * worker's fd 0, so that [System.inheritedChannel] returns it as a
         * [java.nio.channels.ServerSocketChannel]: what Tomcat's `useInheritedChannel` and Jetty's
         * `ServerConnector.setInheritChannel(true)` serve on. A worker's stdin is then that
         * listening socket, not the supervisor's stdin. `forkProcesses` throws
         * [IllegalStateException] when no shared socket was bound before it.
         */
        public fun inheritedChannel(enabled: Boolean): Builder = apply { inheritedChannel = enabled }

        /**
         * With `true`, a worker is ready (a rolling restart stops the worker it replaces, the
         * listener hears [WorkerEvent.Ready]) only once it calls [Worker.ready]: after a Spring
         * context is up, not seconds earlier when `forkProcesses` returned. prefork's
         * integrations call it when their server starts serving. With `false` (the default),
         * the worker is ready as soon as `forkProcesses` returns in it, its sockets adopted.
         */
        public fun explicitReady(enabled: Boolean): Builder = apply { explicitReady = enabled }

        /**
         * How long a rolling restart waits for a replacement to become ready. Past it the
         * replacement is stopped, the old worker keeps serving, and the rolling restart ends
         * with an error in the log. Default 60 s.
         */
        public fun readyTimeout(timeout: Duration): Builder = apply {
            require(!timeout.isNegative && !timeout.isZero) { "readyTimeout <= 0: $timeout" }
            readyTimeout = timeout
        }

        /**
         * The longest a worker that got SIGTERM keeps its JVM up, after it stopped accepting,
         * for the connections it had accepted to close (requests in flight to finish; idle
         * keep-alive connections hold it too, unless the server closes them on shutdown).
         * Never more than [gracefulTimeout], after which the supervisor kills the worker.
         * Default 10 s; zero exits as soon as the JVM's shutdown hooks are done.
         */
        public fun drainTimeout(timeout: Duration): Builder = apply {
            require(!timeout.isNegative) { "drainTimeout < 0: $timeout" }
            drainTimeout = timeout
        }

        public fun build(): ForkOptions = ForkOptions(this)
    }

    override fun toString(): String =
        "ForkOptions(numProcesses=$numProcesses, maxRestarts=$maxRestarts, restartWindow=$restartWindow, " +
            "backoff=$backoffInitial..$backoffMax, gracefulTimeout=$gracefulTimeout, workerCommand=$workerCommand, " +
            "inheritedChannel=$inheritedChannel, explicitReady=$explicitReady, readyTimeout=$readyTimeout, drainTimeout=$drainTimeout)"

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

    /** The worker is serving: `forkProcesses` returned in it, or it called [Worker.ready] (see [ForkOptions.explicitReady]). */
    public class Ready internal constructor(id: Int, pid: Long) : WorkerEvent(id, pid) {
        override fun toString(): String = "child $id (pid $pid) ready"
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
