package dev.prefork.supervisor

import dev.prefork.log.info
import dev.prefork.log.logger
import dev.prefork.log.warn
import java.io.FileInputStream
import java.io.FileOutputStream
import java.io.IOException
import java.io.OutputStream
import kotlin.system.exitProcess

private val logger = logger("dev.prefork.supervisor.WorkerRuntime")

/**
 * This JVM as a worker, when a supervisor started it: its id (or, for a spare, the pipe its id
 * will come on), its inherited socket groups, and the two control pipes. Reading it costs a
 * few environment lookups and no native binding, so a worker starts as fast as a plain JVM: this runs on
 * a worker's start-up path, where it loads nothing of Kotlin's standard library beyond a few
 * small classes (see [WorkerEnvironment.split]).
 */
internal object WorkerRuntime {
    // Above the properties that read them: Kotlin 1.9's compiler (the floor) takes a const declared below its reader as not yet initialized.
    const val EXPLICIT = "explicit"
    const val RETIRE = "retire"
    const val DEFAULT_DRAIN_MILLIS = 10_000L

    /** The watch pipe's and the ready pipe's fds (3 and 4), or null: no supervisor started this JVM. */
    private val controlFds: IntArray? = run {
        val fds = System.getenv(WorkerEnvironment.CONTROL_FDS)?.let { WorkerEnvironment.split(it, ',') }
        val watch = if (fds != null && fds.size == 2) WorkerEnvironment.intOrNull(fds[0]) else null
        val ready = if (fds != null && fds.size == 2) WorkerEnvironment.intOrNull(fds[1]) else null
        val expected = System.getenv(WorkerEnvironment.WATCH_PIPE)
        // The variables alone prove nothing: fd 3 must be the very pipe the supervisor named.
        if (watch == null || ready == null || expected == null || WorkerEnvironment.fdTarget(watch) != expected) null else intArrayOf(watch, ready)
    }

    /** A spare's end of its assignment pipe, on which the supervisor writes the id it takes over. */
    private val assignFd: Int? = if (controlFds != null) WorkerEnvironment.intOrNull(System.getenv(WorkerEnvironment.SPARE)) else null

    /**
     * This worker's id: known from the start, or for a spare from the moment the supervisor
     * assigned it one (`forkProcesses` returns it then). Null in every other process.
     */
    @Volatile
    var taskId: Int? = if (controlFds != null && assignFd == null) WorkerEnvironment.intOrNull(System.getenv(WorkerEnvironment.TASK_ID)) else null
        private set

    /** Whether a supervisor started this JVM, as a worker or as a spare. */
    val isWorker: Boolean = taskId != null || assignFd != null

    /** A spare that no worker's id has been given to yet. */
    val isSpare: Boolean get() = assignFd != null && taskId == null

    val socketGroups: List<WorkerEnvironment.Group> =
        if (!isWorker) java.util.Collections.emptyList() else WorkerEnvironment.decode(System.getenv(WorkerEnvironment.SOCKETS) ?: "")

    /** Ready only when the worker's code says so ([dev.prefork.Worker.ready]), not when forkProcesses returns. */
    private val explicitReady = isWorker && System.getenv(WorkerEnvironment.READY) == EXPLICIT

    val drainMillis: Long = WorkerEnvironment.intOrNull(System.getenv(WorkerEnvironment.DRAIN_MS))?.toLong() ?: DEFAULT_DRAIN_MILLIS

    /** Whether fd 0 is the first shared listening socket (`ForkOptions.inheritedChannel`). */
    private val inheritedChannel = isWorker && System.getenv(WorkerEnvironment.INHERITED_CHANNEL) == "1"

    /** With a worker timeout, how often to say `alive` on the ready pipe; null: never. */
    private val heartbeatMillis: Long? = if (isWorker) WorkerEnvironment.intOrNull(System.getenv(WorkerEnvironment.HEARTBEAT_MS))?.toLong() else null

    /** [dev.prefork.Worker.healthCheck]'s check: a heartbeat is sent only when it says true. */
    @Volatile
    var healthCheck: java.util.function.BooleanSupplier? = null

    private var started = false
    /** Whether [ready] was said; guarded by itself (an AtomicBoolean would set up VarHandles on the start-up path). */
    private val readySent = booleanArrayOf(false)

    /** "worker 3", or "spare" before a spare got its id: for log lines. */
    fun describe(): String = taskId?.let { "worker $it" } ?: "spare"

    /**
     * Called by forkProcesses in a worker, its sockets adopted: watch the supervisor, stop
     * accepting first on SIGTERM, and say ready unless the worker's code will. A spare first
     * tells the supervisor it is waiting, then blocks until it is given a worker's id, and
     * returns that. Null outside a worker.
     */
    @Synchronized
    fun start(): Int? {
        if (!isWorker) return null
        if (!started) {
            started = true
            controlFds?.let { watchSupervisor(it[0]) }
            WorkerStop.install(drainMillis, inheritedChannel)
            readyPipe = openReadyPipe() // now, off the path of a spare's first moments as a worker
            heartbeatMillis?.let(::beat)
        }
        assignFd?.let { fd ->
            if (taskId == null) {
                report(SPARE_LINE)
                taskId = awaitAssignment(fd)
            }
        }
        if (!explicitReady || readyWhileSpare) ready()
        return taskId
    }

    /** Tells the supervisor this worker is serving (rolling restarts wait for it); once, and never from an unassigned spare. */
    fun ready() {
        if (taskId == null) {
            // A spare's server said it is ready while warming up: it counts once the spare has an id.
            if (isSpare) readyWhileSpare = true
            return
        }
        synchronized(readySent) {
            if (readySent[0]) return
            readySent[0] = true
        }
        report(READY_LINE)
    }

    /** This worker's end of the ready pipe (fd 4), opened once: a spare's first report after it is assigned loads nothing new. */
    @Volatile
    private var readyPipe: OutputStream? = null

    private fun openReadyPipe(): OutputStream? {
        val fd = controlFds?.get(1) ?: return null
        // O_CREAT and O_TRUNC, which FileOutputStream asks for, do nothing to a pipe; anything else is left alone.
        if (!WorkerEnvironment.isPipe(WorkerEnvironment.fdTarget(fd))) return null
        return try {
            FileOutputStream("/proc/self/fd/$fd")
        } catch (e: IOException) {
            logger.warn(e) { "${describe()} cannot report to its supervisor on fd $fd" }
            null
        }
    }

    /** Set when [ready] was called in a spare before it had an id. */
    @Volatile
    private var readyWhileSpare = false

    /** A line on the ready pipe, which only the supervisor reads. */
    private fun report(line: ByteArray) {
        // Opened in start(), or here for a worker that says it is ready before forkProcesses.
        val out = readyPipe ?: synchronized(this) { readyPipe ?: openReadyPipe().also { readyPipe = it } } ?: return
        try {
            synchronized(out) { out.write(line) }
        } catch (e: IOException) {
            logger.warn(e) { "${describe()} could not report to its supervisor" }
        }
    }

    /**
     * Blocks until the supervisor writes this spare's id (`"<id>\n"`) on [fd]. `"retire\n"`
     * ends the spare with status 0 (the start-up archive's training run ends so, and its JVM
     * writes the archive as it exits); end-of-file means the supervisor is gone, and this JVM
     * exits as any orphaned worker does.
     */
    private fun awaitAssignment(fd: Int): Int {
        val line = StringBuilder()
        try {
            FileInputStream("/proc/self/fd/$fd").use { input ->
                while (true) {
                    val b = input.read()
                    if (b < 0 || b == '\n'.code) break
                    line.append(b.toChar())
                }
            }
        } catch (e: IOException) {
            logger.warn(e) { "spare cannot read its assignment on fd $fd" }
        }
        val text = line.toString()
        if (text == RETIRE) exitProcess(0)
        return WorkerEnvironment.intOrNull(text) ?: run {
            logger.warn { "spare: supervisor is gone before it assigned an id, exiting" }
            exitProcess(ORPHAN_EXIT)
        }
    }

    /**
     * Says `alive` on the ready pipe every [everyMillis] while [healthCheck] passes, from a
     * daemon thread of its own: a stopped or frozen JVM, or a check that fails or hangs, falls
     * silent, and the supervisor's worker timeout catches it.
     */
    private fun beat(everyMillis: Long) {
        val heartbeat = object : Thread("prefork-heartbeat") {
            override fun run() {
                var healthy = true
                while (true) {
                    val check = healthCheck
                    val passes = try {
                        check == null || check.asBoolean
                    } catch (e: Throwable) { // an AssertionError too: this thread must outlive any check
                        if (healthy) logger.warn(e) { "${describe()}: health check failed; no heartbeat while it fails" }
                        healthy = false
                        false
                    }
                    if (passes) {
                        if (!healthy) logger.info { "${describe()}: health check passes again" }
                        report(ALIVE_LINE)
                    } else if (healthy) {
                        logger.warn { "${describe()}: health check says unhealthy; no heartbeat while it does" }
                    }
                    healthy = passes
                    sleep(everyMillis)
                }
            }
        }
        heartbeat.isDaemon = true
        heartbeat.start()
    }

    /**
     * Exits when the supervisor dies, however it dies: the supervisor holds the only write
     * end of [fd]'s pipe, so the kernel closes it with the supervisor and this read returns -1.
     */
    private fun watchSupervisor(fd: Int) {
        val input = try {
            FileInputStream("/proc/self/fd/$fd")
        } catch (e: IOException) {
            logger.warn(e) { "${describe()} cannot watch its supervisor on fd $fd" }
            return
        }
        val watch = object : Thread("prefork-supervisor-watch") {
            override fun run() {
                try {
                    while (input.read() >= 0) { /* the supervisor never writes; only end-of-file matters */ }
                } catch (e: IOException) {
                    // treated as end-of-file
                }
                logger.warn { "${describe()}: supervisor is gone, exiting" }
                object : Thread("prefork-orphan-exit") {
                    override fun run() = System.exit(ORPHAN_EXIT)
                }.start()
                sleep(HALT_AFTER_MILLIS)
                Runtime.getRuntime().halt(ORPHAN_EXIT)
            }
        }
        watch.isDaemon = true
        watch.start()
    }

    private val READY_LINE = "ready\n".toByteArray()
    private val SPARE_LINE = "spare\n".toByteArray()
    private val ALIVE_LINE = "alive\n".toByteArray()
    private const val ORPHAN_EXIT = 1
    private const val HALT_AFTER_MILLIS = 500L
}
