package dev.prefork.bench

import java.io.IOException
import java.io.InputStream
import java.nio.file.Path
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread

/**
 * A [ForkServer][main] supervisor in a fresh JVM with [workers] workers, as the benchmark sees
 * it through the lines on its stdout. [close] stops the supervisor and every worker it ever
 * started, and kills whatever is left; benchmarks call it in a finally block.
 */
internal class ServerJvm(workers: Int, jvmArgs: List<String>) : AutoCloseable {
    /**
     * A worker that said it is about to accept: its id, pid, and when it entered `main`, had its
     * socket, got its id back from `forkProcesses`, and was ready (epoch µs).
     */
    class WorkerUp(val id: Int, val pid: Long, val mainMicros: Long, val boundMicros: Long, val forkedMicros: Long, val readyMicros: Long)

    /** Marks this server's processes: it is an argument of the supervisor, so of every worker too. */
    private val token = "prefork-bench-${ProcessHandle.current().pid()}-${serial.incrementAndGet()}"
    private val process = ProcessBuilder(jvmCommand(FORK_SERVER, listOf(token, workers.toString()), jvmArgs)).start()

    @Volatile private var port: Int? = null
    private val ups = ConcurrentHashMap<Long, WorkerUp>()
    private val latest = ConcurrentHashMap<Int, WorkerUp>()
    private val startedAt = ConcurrentHashMap<Long, Long>()
    private val exitedAt = ConcurrentHashMap<Long, Long>()
    private val stderrTail = ArrayDeque<String>()

    private val readers = listOf(
        reader("fork-server-stdout", process.inputStream, ::parse),
        reader("fork-server-stderr", process.errorStream) { line ->
            synchronized(stderrTail) {
                stderrTail.addLast(line)
                if (stderrTail.size > STDERR_LINES) stderrTail.removeFirst()
            }
        },
    )

    /** The JDK closes a dead child's pipe under a blocked reader ("Stream closed"): that is the end of the stream too. */
    private fun reader(name: String, stream: InputStream, onLine: (String) -> Unit) = thread(isDaemon = true, name = name) {
        try {
            stream.bufferedReader().forEachLine(onLine)
        } catch (e: IOException) {
            // end of the stream
        }
    }

    private fun parse(line: String) {
        val words = line.split(" ")
        when {
            words[0] == "port" -> port = words[1].toInt()
            words[0] == "worker" -> {
                val up = WorkerUp(words[1].toInt(), words[3].toLong(), words[5].toLong(), words[7].toLong(), words[9].toLong(), words[11].toLong())
                ups[up.pid] = up
                latest[up.id] = up
            }
            words[0] == "event" && words[1] == "started" -> startedAt[words[3].toLong()] = words[5].toLong()
            words[0] == "event" && words[1] == "exited" -> exitedAt[words[3].toLong()] = words[5].toLong()
        }
    }

    fun awaitPort(): Int = await("the port") { port }

    /** Waits until every id in `0 until n` has a worker ready to accept. */
    fun awaitWorkers(n: Int): List<WorkerUp> = (0 until n).map { id -> await("worker $id") { latest[id] } }

    /** The worker with [pid] once it reported ready. */
    fun awaitUp(pid: Long): WorkerUp = await("worker pid $pid ready") { ups[pid] }

    /** When the supervisor saw [pid] exit (epoch µs). */
    fun awaitExited(pid: Long): Long = await("exit of pid $pid") { exitedAt[pid] }

    /** When the supervisor had started [pid] (epoch µs). */
    fun awaitStarted(pid: Long): Long = await("start of pid $pid") { startedAt[pid] }

    /** The last worker with [id] that reported ready, unless the supervisor has seen it exit since. */
    fun readyWorker(id: Int): WorkerUp? = latest[id]?.takeIf { !exitedAt.containsKey(it.pid) }

    /** Workers whose exit the supervisor has seen: the restarts it made. */
    fun exits(): Int = exitedAt.size

    /** The pids of this server's workers that are alive now. */
    fun liveWorkerPids(): List<Long> = latest.values.map { it.pid }.filter { !exitedAt.containsKey(it) }

    private fun <T> await(what: String, probe: () -> T?): T {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(AWAIT_SECONDS)
        while (true) {
            probe()?.let { return it }
            check(process.isAlive) { "fork server exited ${process.exitValue()} while waiting for $what; stderr:\n${stderr()}" }
            check(System.nanoTime() < deadline) { "no $what from the fork server within ${AWAIT_SECONDS}s; stderr:\n${stderr()}" }
            Thread.sleep(1)
        }
    }

    private fun stderr(): String = synchronized(stderrTail) { stderrTail.joinToString("\n") }

    /**
     * SIGTERM to the supervisor, which stops and reaps its workers; then SIGKILL to anything
     * still carrying this server's token (a worker the supervisor was starting as it died).
     */
    override fun close() {
        process.destroy()
        if (!process.waitFor(STOP_SECONDS, TimeUnit.SECONDS)) {
            process.destroyForcibly()
            process.waitFor()
        }
        repeat(SWEEPS) {
            val left = ProcessHandle.allProcesses().filter { handle ->
                handle.info().arguments().map { token in it }.orElse(false)
            }.toList()
            if (left.isEmpty()) return@repeat
            left.forEach { it.destroyForcibly() }
            left.forEach { runCatching { it.onExit().get(STOP_SECONDS, TimeUnit.SECONDS) } }
        }
        readers.forEach { it.join(1_000) }
    }

    companion object {
        private const val FORK_SERVER = "dev.prefork.bench.ForkServerKt"
        private const val STDERR_LINES = 40
        private const val AWAIT_SECONDS = 60L
        private const val STOP_SECONDS = 10L
        private const val SWEEPS = 3
        private val serial = AtomicInteger()

        /**
         * The command line of a fresh JVM running [mainClass] from this benchmark's class path.
         * With [asWorker] it gets the flag prefork adds when it re-executes a worker, so a
         * reference JVM starts exactly as a worker does.
         */
        fun jvmCommand(mainClass: String, args: List<String>, jvmArgs: List<String>, asWorker: Boolean = false): List<String> =
            buildList {
                add(Path.of(System.getProperty("java.home"), "bin", "java").toString())
                if (asWorker) add("--add-opens=java.base/sun.nio.ch=ALL-UNNAMED")
                add("--enable-native-access=ALL-UNNAMED")
                if (Runtime.version().feature() >= 23) add("--sun-misc-unsafe-memory-access=allow")
                add("-Dkotlin-logging.logStartupMessage=false")
                addAll(jvmArgs)
                add("-cp")
                add(System.getProperty("java.class.path"))
                add(mainClass)
                addAll(args)
            }
    }
}
