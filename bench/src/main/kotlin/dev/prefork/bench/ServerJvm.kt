package dev.prefork.bench

import java.io.IOException
import java.io.InputStream
import java.nio.file.Path
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread

/**
 * A [ForkServer][main] supervisor in a fresh JVM with [workers] workers and [spares] spares, as
 * the benchmark sees it through the lines on its stdout. [close] stops the supervisor and every
 * worker it ever started, and kills whatever is left; benchmarks call it in a finally block.
 */
internal class ServerJvm(workers: Int, jvmArgs: List<String>, spares: Int = 0, archive: Boolean = true) : AutoCloseable {
    /**
     * A worker that said it is about to accept: its id, pid, and when it entered `main`, had its
     * socket, got its id back from `forkProcesses`, and was ready (epoch µs).
     */
    class WorkerUp(val id: Int, val pid: Long, val mainMicros: Long, val boundMicros: Long, val forkedMicros: Long, val readyMicros: Long)

    /** Marks this server's processes: it is an argument of the supervisor, so of every worker too. */
    private val token = "prefork-bench-${ProcessHandle.current().pid()}-${serial.incrementAndGet()}"
    private val process = ProcessBuilder(
        jvmCommand(FORK_SERVER, listOf(token, workers.toString(), spares.toString(), if (archive) "archive" else "no-archive"), jvmArgs),
    ).start()

    /** The supervisor said whether its workers map a start-up archive: made now, found, or none possible. */
    @Volatile private var archiveSettled = !archive

    @Volatile private var port: Int? = null
    private val ups = ConcurrentHashMap<Long, WorkerUp>()
    private val latest = ConcurrentHashMap<Int, WorkerUp>()
    private val startedAt = ConcurrentHashMap<Long, Long>()
    private val exitedAt = ConcurrentHashMap<Long, Long>()

    /** Spares the supervisor saw waiting (warmed up), by pid; a pid leaves when it takes over an id or exits. */
    private val waitingSpares = ConcurrentHashMap<Long, Long>()
    private val stderrTail = ArrayDeque<String>()

    private val readers = listOf(
        reader("fork-server-stdout", process.inputStream, ::parse),
        reader("fork-server-stderr", process.errorStream) { line ->
            if (line.contains("start-up archive")) archiveSettled = archiveSettled || !line.contains("training JVM")
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
            words[0] == "event" && words[1] == "spare-ready" -> waitingSpares[words[3].toLong()] = words[5].toLong()
            words[0] == "event" && words[1] == "started" -> {
                startedAt[words[3].toLong()] = words[5].toLong()
                waitingSpares.remove(words[3].toLong())
            }
            words[0] == "event" && words[1] == "exited" -> exitedAt[words[3].toLong()] = words[5].toLong()
            words[0] == "event" && words[1] == "spare-exited" -> waitingSpares.remove(words[3].toLong())
        }
    }

    fun awaitPort(): Int = await("the port") { port }

    /** Waits until every id in `0 until n` has a worker ready to accept. */
    fun awaitWorkers(n: Int): List<WorkerUp> = (0 until n).map { id -> await("worker $id") { latest[id] } }

    /** The worker with [pid] once it reported ready. */
    fun awaitUp(pid: Long): WorkerUp = await("worker pid $pid ready") { ups[pid] }

    /** When the supervisor saw [pid] exit (epoch µs). */
    fun awaitExited(pid: Long): Long = await("exit of pid $pid") { exitedAt[pid] }

    /** When the supervisor had started [pid] (epoch µs), or a spare [pid] took over an id. */
    fun awaitStarted(pid: Long): Long = await("start of pid $pid") { startedAt[pid] }

    /** Waits until workers started from now on map the start-up archive (or the supervisor said why there is none). */
    fun awaitArchive() {
        await("the start-up archive") { archiveSettled.takeIf { it } }
    }

    /** Waits until a spare has warmed up and waits for an id; its pid. */
    fun awaitWaitingSpare(): Long = await("a waiting spare") { waitingSpares.keys.firstOrNull() }

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
         * The command line of a fresh JVM running [mainClass] from this benchmark's jar, as a
         * user's executable jar runs: `java -jar` on a small launcher jar whose manifest names
         * the main class, puts the benchmark's jar on the class path, and says what a prefork
         * application's manifest says (`Add-Opens: java.base/sun.nio.ch`, so that workers need
         * no flag that would cost them the JVM's archived module graph, and
         * `Enable-Native-Access: ALL-UNNAMED`). A reference JVM started this way starts exactly
         * as a worker does, which re-executes the same command line.
         */
        fun jvmCommand(mainClass: String, args: List<String>, jvmArgs: List<String>): List<String> =
            buildList {
                add(Path.of(System.getProperty("java.home"), "bin", "java").toString())
                if (Runtime.version().feature() >= 23) add("--sun-misc-unsafe-memory-access=allow")
                addAll(jvmArgs)
                add("-jar")
                add(launcherJar(mainClass).toString())
                addAll(args)
            }

        private val launchers = java.util.concurrent.ConcurrentHashMap<String, Path>()

        /**
         * In the directory of the benchmark's own jar, with a relative `Class-Path` (as an
         * application's jar has its libraries beside it): CDS keeps the classes of a class path
         * given so, and falls back to loading them for one given as absolute `file:` URLs.
         */
        private fun launcherJar(mainClass: String): Path = launchers.computeIfAbsent(mainClass) {
            val entries = System.getProperty("java.class.path").split(java.io.File.pathSeparator).map { Path.of(it).toAbsolutePath() }
            val dir = entries[0].parent
            val manifest = java.util.jar.Manifest().apply {
                mainAttributes[java.util.jar.Attributes.Name.MANIFEST_VERSION] = "1.0"
                mainAttributes[java.util.jar.Attributes.Name.MAIN_CLASS] = mainClass
                mainAttributes[java.util.jar.Attributes.Name.CLASS_PATH] = entries.joinToString(" ") { dir.relativize(it).toString() }
                mainAttributes.putValue("Add-Opens", "java.base/sun.nio.ch")
                mainAttributes.putValue("Enable-Native-Access", "ALL-UNNAMED")
            }
            val jar = dir.resolve("prefork-bench-launch-${mainClass.substringAfterLast('.')}.jar")
            java.util.jar.JarOutputStream(java.nio.file.Files.newOutputStream(jar), manifest).close()
            jar
        }
    }
}
