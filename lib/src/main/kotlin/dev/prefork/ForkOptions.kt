package dev.prefork

import java.nio.file.Path
import java.time.Duration

/**
 * How [forkProcesses] runs its workers. Build with [ForkOptions.builder]; every setting has
 * Tornado's default except the ones Tornado lacks (graceful stop, window, backoff, listener).
 *
 * (Over 300 lines: one class and its builder, each of some 30 settings with its getter, its
 * builder method for Java and Kotlin, and the documentation users read in their IDE.)
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

    /** The longest delay the doubling of [backoffInitial] reaches; a worker that ran at least this long before failing starts again from [backoffInitial]. */
    @get:JvmName("backoffMax")
    public val backoffMax: Duration = builder.backoffMax

    /** Failed starts in a row, of every worker, after which the supervisor gives up (see [Builder.startFailureLimit]); 0: never for that. */
    @get:JvmName("startFailureLimit")
    public val startFailureLimit: Int = builder.startFailureLimit

    /** How long workers get between SIGTERM and SIGKILL when the supervisor stops or replaces them. */
    @get:JvmName("gracefulTimeout")
    public val gracefulTimeout: Duration = builder.gracefulTimeout

    /** The command that starts a worker, instead of re-executing this JVM's own command line. */
    @get:JvmName("workerCommand")
    public val workerCommand: List<String>? = builder.workerCommand

    /** Told of every [WorkerEvent], on the supervisor's thread; null: none. */
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

    /** Whether each worker's JVM is told its share of the CPUs (see [Builder.cpuShare]). */
    @get:JvmName("cpuShare")
    public val cpuShare: Boolean = builder.cpuShare

    /** Whether each worker runs only on CPUs of its own (see [Builder.pinWorkers]). */
    @get:JvmName("pinWorkers")
    public val pinWorkers: Boolean = builder.pinWorkers

    /** Extra worker JVMs kept started and waiting, unassigned, to take over from a worker that exits. */
    @get:JvmName("spareWorkers")
    public val spareWorkers: Int = builder.spareWorkers

    /** Whether workers start from a class-data archive made for this application (see [Builder.startupArchive]). */
    @get:JvmName("startupArchive")
    public val startupArchive: Boolean = builder.startupArchive

    /** Where the start-up archive is kept; null: a directory of this user's under `java.io.tmpdir`. */
    @get:JvmName("startupArchiveDirectory")
    public val startupArchiveDirectory: Path? = builder.startupArchiveDirectory

    /** Where the supervisor keeps its state for probes (see [Builder.statusFile]); null: nowhere. */
    @get:JvmName("statusFile")
    public val statusFile: Path? = builder.statusFile

    /** How long a worker may go without a heartbeat before it is stopped and restarted (see [Builder.workerTimeout]); null: never. */
    @get:JvmName("workerTimeout")
    public val workerTimeout: Duration? = builder.workerTimeout

    /** A worker whose resident memory passes this many bytes is replaced gracefully (see [Builder.maxWorkerRss]); 0: no limit. */
    @get:JvmName("maxWorkerRss")
    public val maxWorkerRss: Long = builder.maxWorkerRss

    /** A worker older than this, plus up to [maxWorkerAgeJitter], is replaced gracefully (see [Builder.maxWorkerAge]); null: no limit. */
    @get:JvmName("maxWorkerAge")
    public val maxWorkerAge: Duration? = builder.maxWorkerAge

    /** The most a worker's random share adds to [maxWorkerAge], so that workers started together are not replaced together. */
    @get:JvmName("maxWorkerAgeJitter")
    public val maxWorkerAgeJitter: Duration = builder.maxWorkerAgeJitter

    /** A builder holding these options, to change a few: `options.toBuilder().numProcesses(8).build()`. */
    public fun toBuilder(): Builder = Builder().also {
        it.numProcesses = numProcesses
        it.maxRestarts = maxRestarts
        it.restartWindow = restartWindow
        it.backoffInitial = backoffInitial
        it.backoffMax = backoffMax
        it.startFailureLimit = startFailureLimit
        it.gracefulTimeout = gracefulTimeout
        it.workerCommand = workerCommand
        it.listener = listener
        it.inheritedChannel = inheritedChannel
        it.explicitReady = explicitReady
        it.readyTimeout = readyTimeout
        it.drainTimeout = drainTimeout
        it.cpuShare = cpuShare
        it.pinWorkers = pinWorkers
        it.spareWorkers = spareWorkers
        it.startupArchive = startupArchive
        it.startupArchiveDirectory = startupArchiveDirectory
        it.statusFile = statusFile
        it.workerTimeout = workerTimeout
        it.maxWorkerRss = maxWorkerRss
        it.maxWorkerAge = maxWorkerAge
        it.maxWorkerAgeJitter = maxWorkerAgeJitter
    }

    /**
     * Sets [ForkOptions] one by one, each setter returning the builder; [build] makes the
     * immutable options. Get one from [ForkOptions.builder] or [ForkOptions.toBuilder]. A setter
     * given a value out of range throws [IllegalArgumentException] at once, not at [build].
     */
    public class Builder internal constructor() {
        internal var numProcesses = 0
        internal var maxRestarts = 100
        internal var restartWindow: Duration? = null
        internal var backoffInitial: Duration = Duration.ZERO
        internal var backoffMax: Duration = Duration.ZERO
        internal var startFailureLimit = RestartPolicy.DEFAULT_START_FAILURE_LIMIT
        internal var gracefulTimeout: Duration = Duration.ofSeconds(30)
        internal var workerCommand: List<String>? = null
        internal var listener: WorkerListener? = null
        internal var inheritedChannel = false
        internal var explicitReady = false
        internal var readyTimeout: Duration = Duration.ofSeconds(60)
        internal var drainTimeout: Duration = Duration.ofSeconds(10)
        internal var cpuShare = true
        internal var pinWorkers = true
        internal var spareWorkers = 0
        internal var startupArchive = true
        internal var startupArchiveDirectory: Path? = null
        internal var statusFile: Path? = null
        internal var workerTimeout: Duration? = null
        internal var maxWorkerRss = 0L
        internal var maxWorkerAge: Duration? = null
        internal var maxWorkerAgeJitter: Duration = Duration.ZERO

        /** Workers to start; 0 or less (the default): [cpuCount]. */
        public fun numProcesses(n: Int): Builder = apply { numProcesses = n }

        /** Abnormal exits restarted before the supervisor gives up with [TooManyRestartsException]; default 100, Tornado's. */
        public fun maxRestarts(n: Int): Builder = apply {
            require(n >= 0) { "maxRestarts < 0: $n" }
            maxRestarts = n
        }

        /**
         * Counts [maxRestarts] within any span of [window] instead of over the whole run, as
         * systemd's `StartLimitIntervalSec` and Erlang's supervisors do; null (the default):
         * Tornado's total count.
         */
        public fun restartWindow(window: Duration?): Builder = apply {
            require(window == null || (!window.isNegative && !window.isZero)) { "restartWindow <= 0: $window" }
            restartWindow = window
        }

        /**
         * Delays a worker's restart by [initial], doubled for each consecutive crash of the same
         * id up to [max]; a worker that ran at least [max] before it failed starts again from
         * [initial] (see [RestartPolicy]). Default zero and zero: restart at once, as Tornado does.
         */
        public fun backoff(initial: Duration, max: Duration): Builder = apply {
            require(!initial.isNegative) { "backoff initial < 0: $initial" }
            require(max >= initial) { "backoff max < initial: $max < $initial" }
            backoffInitial = initial
            backoffMax = max
        }

        /**
         * Gives up when every worker failed its last [n] starts in a row, each exiting abnormally
         * before it was ready, whatever is left of [maxRestarts]: an application that cannot
         * start at all (its port taken, a class missing, a bad setting) stops the supervisor with
         * [TooManyRestartsException] after [n] rounds, not after the whole budget. A worker is ready
         * when it calls [Worker.ready] with [explicitReady] (the framework integrations do when
         * the application is), when `forkProcesses` returns in it otherwise; once one worker
         * serves, the others' failed starts are crashes like any other. With a [backoff] the
         * rule is off (a backoff asks to retry a start that fails, an outage at boot say, and
         * [maxRestarts] alone decides). Default 3; 0: never.
         */
        public fun startFailureLimit(n: Int): Builder = apply {
            require(n >= 0) { "startFailureLimit < 0: $n" }
            startFailureLimit = n
        }

        /** How long a worker gets between SIGTERM and SIGKILL when it is stopped or replaced; default 30 s. */
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

        /** [workerCommand] with the program and its arguments given one by one. */
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
         * How long a rolling restart (or a recycling) waits for a replacement to become ready.
         * Past it the replacement is stopped, the old worker keeps serving, and the rolling
         * restart ends with an error in the log. Also the start-up grace of [workerTimeout].
         * Default 60 s.
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

        /**
         * Whether each worker's JVM is sized for its share of the CPUs (default true): started
         * with `-XX:ActiveProcessorCount=k`, where k is the supervisor's own processor count
         * (`Runtime.availableProcessors()`: its CPU affinity and its cgroup's quota included)
         * divided among the workers, at least 1. A JVM sizes its JIT and GC threads, the common
         * ForkJoin pool and the servers' event loops and selectors by that count; N workers that
         * each see every CPU run N times the threads the machine has cores for. Not added when
         * the worker's command already sets the flag (on its command line, or in
         * `JAVA_TOOL_OPTIONS`, `JDK_JAVA_OPTIONS` or `_JAVA_OPTIONS`), nor to a [workerCommand]
         * that is not a `java` launcher. A worker keeps its count until it is replaced: after
         * SIGTTIN or SIGTTOU the new count reaches the others at their next (rolling) restart.
         * Spares and the start-up archive's training run get the smallest share.
         */
        public fun cpuShare(enabled: Boolean): Builder = apply { cpuShare = enabled }

        /**
         * Whether each worker runs only on CPUs of its own (default true), as nginx's
         * `worker_cpu_affinity auto` places its workers: the CPUs the supervisor may run on are
         * cut into one contiguous slice per worker (with more workers than CPUs, one CPU each,
         * shared in turn), and worker `id` moves to slice `id` once it is ready, every thread
         * of it (Linux `sched_setaffinity`; threads it makes later inherit it). Its start-up
         * had every CPU; from then on its threads stay on caches of their own and off the other
         * workers' cores. A spare runs anywhere until it took over an id and is ready; SIGTTIN
         * and SIGTTOU move every worker to its new slice. Turn it off where the workers share
         * their CPUs with other busy processes, which pinning keeps them from escaping.
         */
        public fun pinWorkers(enabled: Boolean): Builder = apply { pinWorkers = enabled }

        /**
         * Keeps [count] spare worker JVMs (default 0) that have run `main` up to
         * `forkProcesses`, their sockets adopted, and wait there without an id and without
         * serving. When a worker exits and is to be restarted, a spare takes over its id at
         * once (its `forkProcesses` returns the id, `taskId()` agrees), instead of a JVM that
         * has yet to start; a new spare is started a second later, in the background (not at
         * once: its start-up would compete for the CPU with the first requests of the one that
         * took over). Restarts are counted
         * exactly as without spares. A rolling restart (SIGHUP) replaces the spares first, so no
         * worker runs the old code after it; spares stop with everything else and exit with the
         * supervisor. A spare that dies before it is assigned is started again after a delay
         * (1 s, doubling up to 30 s while it keeps failing), and costs no restart. Code before
         * `forkProcesses` can tell it runs in a spare with [Worker.isSpare], to warm up; the
         * listener hears [WorkerEvent.SpareStarted] and [WorkerEvent.SpareExited], and a
         * [WorkerEvent.Started] when a spare takes over an id.
         */
        public fun spareWorkers(count: Int): Builder = apply {
            require(count >= 0) { "spareWorkers < 0: $count" }
            spareWorkers = count
        }

        /**
         * Whether workers start from a class-data archive made for this application (default
         * `true`): the classes a worker loads on its way to `forkProcesses` (and through a
         * spare's warm-up, see [Worker.isSpare]) are archived once by a training run, one extra
         * worker JVM started after the first workers are ready that exits at `forkProcesses`,
         * then mapped by every later worker and spare instead of loaded again, and shared
         * between them in memory. The archive is kept for later runs and made again when the
         * JDK, the class path's jars or the JVM options change. There is none (one log line
         * says why) when the class path holds directories (the JVM archives classes from jars
         * only), the command line sets class-data sharing itself, [workerCommand] is set, or
         * the directory is unusable; workers then start as they would without it. Dynamic CDS
         * (`-XX:ArchiveClassesAtExit`, `-XX:SharedArchiveFile`), on JDK 17 and later.
         */
        public fun startupArchive(enabled: Boolean): Builder = apply { startupArchive = enabled }

        /**
         * Where the start-up archive is kept (default: `prefork-<uid>` under `java.io.tmpdir`),
         * created owner-only when missing. A directory that another user could write to is
         * refused, as a JVM runs whatever classes an archive holds.
         */
        public fun startupArchiveDirectory(directory: Path): Builder = apply { startupArchiveDirectory = directory }

        /**
         * A file the supervisor keeps its state in, for a probe that cannot ask it (a Kubernetes
         * `exec` probe, a monitoring agent): one line of JSON, replaced whole (written beside it,
         * then renamed) at every change, such as
         * `{"pid":41,"state":"serving","workers":4,"serving":4,"restarting":0,"spares":0,"updated":"2026-12-01T14:00:00Z"}`.
         * `state` is `starting` until every worker first serves, then `serving`, `reloading`
         * during a rolling restart, `stopping` on a graceful stop, `gave-up` past the restart
         * budget; the file is deleted when the supervisor exits normally. Its directory must exist.
         */
        public fun statusFile(file: Path): Builder = apply { statusFile = file }

        /**
         * gunicorn's `timeout`: every worker proves it is alive at least this often, and one
         * silent for longer gets SIGTERM, then SIGKILL after [gracefulTimeout], and is restarted
         * with its id (an abnormal exit: it counts against [maxRestarts] like a crash); the log
         * and the listener ([WorkerEvent.TimedOut]) say it timed out. The proof is a heartbeat a
         * prefork thread in the worker sends every quarter of the timeout (at most every
         * second) from the moment its `forkProcesses` runs (a spare beats while it waits there),
         * so a stopped or frozen JVM is caught; with a [Worker.healthCheck] it beats only while
         * that check passes, so a deadlocked server is caught too. Until it is ready a worker
         * has [readyTimeout] or this timeout, whichever is longer. A rolling restart's
         * replacement that times out before it is ready is dropped and the old worker kept, as
         * when it exits. Default null: no watchdog. A timeout below 100 ms is refused: a loaded
         * machine delays heartbeats that much.
         */
        public fun workerTimeout(timeout: Duration?): Builder = apply {
            require(timeout == null || timeout >= MIN_WORKER_TIMEOUT) { "workerTimeout < $MIN_WORKER_TIMEOUT: $timeout" }
            workerTimeout = timeout
        }

        /**
         * Puma's and Passenger's memory limit: a worker whose resident set (VmRSS in
         * `/proc/<pid>/status`, read every second) passes [bytes] is replaced gracefully, the way
         * a rolling restart replaces one: its replacement serves before it gets SIGTERM and
         * drains. One worker is replaced at a time; a replacement is not a restart, and
         * [maxRestarts] does not count it. The listener hears [WorkerEvent.Recycled]. Default 0:
         * no limit. Set it above what a worker needs once warm, heap included (a JVM's RSS
         * grows to its committed heap).
         */
        public fun maxWorkerRss(bytes: Long): Builder = apply {
            require(bytes >= 0) { "maxWorkerRss < 0: $bytes" }
            maxWorkerRss = bytes
        }

        /**
         * gunicorn's `max_requests` by the clock: a worker that has served for [age] plus a
         * random part of [jitter] (drawn for each worker as it starts, so that workers started
         * together are not replaced together) is replaced gracefully, as [maxWorkerRss] replaces
         * one, one at a time, never counted against [maxRestarts]. Default null: no limit.
         */
        @JvmOverloads
        public fun maxWorkerAge(age: Duration?, jitter: Duration = Duration.ZERO): Builder = apply {
            require(age == null || (!age.isNegative && !age.isZero)) { "maxWorkerAge <= 0: $age" }
            require(!jitter.isNegative) { "maxWorkerAge jitter < 0: $jitter" }
            maxWorkerAge = age
            maxWorkerAgeJitter = jitter
        }

        /** The options as set so far; the builder may be changed and built again. */
        public fun build(): ForkOptions = ForkOptions(this)
    }

    /** Every setting, for logs. */
    override fun toString(): String =
        "ForkOptions(numProcesses=$numProcesses, maxRestarts=$maxRestarts, restartWindow=$restartWindow, startFailureLimit=$startFailureLimit, " +
            "backoff=$backoffInitial..$backoffMax, gracefulTimeout=$gracefulTimeout, workerCommand=$workerCommand, " +
            "inheritedChannel=$inheritedChannel, explicitReady=$explicitReady, readyTimeout=$readyTimeout, drainTimeout=$drainTimeout, " +
            "cpuShare=$cpuShare, pinWorkers=$pinWorkers, spareWorkers=$spareWorkers, startupArchive=$startupArchive, startupArchiveDirectory=$startupArchiveDirectory, statusFile=$statusFile, " +
            "workerTimeout=$workerTimeout, maxWorkerRss=$maxWorkerRss, maxWorkerAge=$maxWorkerAge+$maxWorkerAgeJitter)"

    /** Where options come from: [builder] (Java: `ForkOptions.builder()`, a static method). */
    public companion object {
        /** A builder with every default: Tornado's where Tornado has the setting. */
        @JvmStatic
        public fun builder(): Builder = Builder()

        private val MIN_WORKER_TIMEOUT: Duration = Duration.ofMillis(100)
    }
}

/** In nanos; a duration past 292 years (`ChronoUnit.FOREVER`, say) is as good as `Long.MAX_VALUE` of them. */
internal fun Duration.nanosOrMax(): Long = try {
    toNanos()
} catch (e: ArithmeticException) {
    Long.MAX_VALUE
}
