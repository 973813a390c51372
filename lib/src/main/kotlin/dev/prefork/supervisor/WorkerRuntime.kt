package dev.prefork.supervisor

import io.github.oshai.kotlinlogging.KotlinLogging
import java.io.FileInputStream
import java.io.IOException
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.StandardOpenOption
import kotlin.concurrent.thread

private val logger = KotlinLogging.logger {}

/**
 * This JVM as a worker, when a supervisor started it (`PREFORK_TASK_ID` is set): its id, its
 * inherited socket groups, and the two control pipes. Reading it costs a few environment
 * lookups and no jnr, so a worker starts as fast as a plain JVM.
 */
internal object WorkerRuntime {
    private val controlFds: List<Int> =
        System.getenv(WorkerEnvironment.CONTROL_FDS)?.split(",")?.mapNotNull { it.toIntOrNull() }.orEmpty()

    /** Set only when fd 3 is the very pipe the supervisor named: the variables alone prove nothing. */
    val taskId: Int? = System.getenv(WorkerEnvironment.TASK_ID)?.toIntOrNull()?.takeIf {
        val expected = System.getenv(WorkerEnvironment.WATCH_PIPE)
        controlFds.size == 2 && expected != null && WorkerEnvironment.fdTarget(controlFds[0]) == expected
    }

    val socketGroups: List<WorkerEnvironment.Group> =
        if (taskId == null) emptyList() else WorkerEnvironment.decode(System.getenv(WorkerEnvironment.SOCKETS).orEmpty())

    /** Ready only when the worker's code says so ([dev.prefork.Worker.ready]), not when forkProcesses returns. */
    private val explicitReady = taskId != null && System.getenv(WorkerEnvironment.READY) == EXPLICIT

    val drainMillis: Long = System.getenv(WorkerEnvironment.DRAIN_MS)?.toLongOrNull() ?: DEFAULT_DRAIN_MILLIS

    /** Whether fd 0 is the first shared listening socket (`ForkOptions.inheritedChannel`). */
    private val inheritedChannel = taskId != null && System.getenv(WorkerEnvironment.INHERITED_CHANNEL) == "1"

    private var started = false
    private var readySent = false

    /**
     * Called by forkProcesses in a worker, its sockets adopted: watch the supervisor, stop
     * accepting first on SIGTERM, and say ready unless the worker's code will.
     */
    @Synchronized
    fun start() {
        val id = taskId ?: return
        if (started) return
        started = true
        controlFds.getOrNull(0)?.let(::watchSupervisor)
        WorkerStop.install(id, drainMillis, inheritedChannel)
        if (!explicitReady) ready()
    }

    /** Tells the supervisor this worker is serving (rolling restarts wait for it); once. */
    @Synchronized
    fun ready() {
        if (readySent || taskId == null) return
        readySent = true
        val fd = controlFds.getOrNull(1) ?: return
        if (WorkerEnvironment.fdTarget(fd)?.startsWith("pipe:") != true) return
        try {
            // WRITE only: never create or truncate, whatever the fd turned out to be.
            Files.newOutputStream(Path.of("/proc/self/fd/$fd"), StandardOpenOption.WRITE).use { it.write(READY) }
        } catch (e: IOException) {
            logger.warn(e) { "worker $taskId could not report ready on fd $fd" }
        }
    }

    /**
     * Exits when the supervisor dies, however it dies: the supervisor holds the only write
     * end of [fd]'s pipe, so the kernel closes it with the supervisor and this read returns -1.
     */
    private fun watchSupervisor(fd: Int) {
        val input = try {
            FileInputStream("/proc/self/fd/$fd")
        } catch (e: IOException) {
            logger.warn(e) { "worker $taskId cannot watch its supervisor on fd $fd" }
            return
        }
        thread(name = "prefork-supervisor-watch", isDaemon = true) {
            try {
                while (input.read() >= 0) { /* the supervisor never writes; only end-of-file matters */ }
            } catch (e: IOException) {
                // treated as end-of-file
            }
            logger.warn { "worker $taskId: supervisor is gone, exiting" }
            thread(name = "prefork-orphan-exit") { System.exit(ORPHAN_EXIT) }
            Thread.sleep(HALT_AFTER_MILLIS)
            Runtime.getRuntime().halt(ORPHAN_EXIT)
        }
    }

    private val READY = "ready\n".toByteArray()
    const val EXPLICIT = "explicit"
    const val DEFAULT_DRAIN_MILLIS = 10_000L
    private const val ORPHAN_EXIT = 1
    private const val HALT_AFTER_MILLIS = 500L
}
