package dev.prefork.bench

import java.io.IOException
import java.net.InetSocketAddress
import java.net.Socket
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.TimeUnit
import kotlin.concurrent.thread

/**
 * One of the framework samples (`samples/<name>/target/prefork-<name>-sample.jar`) started as
 * its README says, `java -jar <jar> --port=… --workers=N` (or `--no-fork`), in a fresh JVM.
 * [close] stops it and kills anything it left.
 */
internal class SampleJvm(val sample: Sample, args: List<String>, jvmArgs: List<String>) : AutoCloseable {
    /** A sample by name: `spring-boot`, `ktor`, `jetty`; or any jar. */
    class Sample(val name: String, val jar: Path = Path.of(System.getProperty("bench.samples", "samples"), name, "target", "prefork-$name-sample.jar")) {
        val exists: Boolean get() = Files.isRegularFile(jar)
        override fun toString(): String = name
    }

    private val process: Process = ProcessBuilder(
        buildList {
            add(Path.of(System.getProperty("java.home"), "bin", "java").toString())
            // As the README starts them: the jars' manifests say Enable-Native-Access themselves.
            if (Runtime.version().feature() >= 23) add("--sun-misc-unsafe-memory-access=allow")
            addAll(jvmArgs)
            add("-jar")
            add(sample.jar.toString())
            addAll(args)
        },
    ).redirectErrorStream(true).start()

    private val output = StringBuffer()

    /** Every line so far with the time it was read (System.nanoTime), for timings between the sample's own lines. */
    private val timed = java.util.concurrent.CopyOnWriteArrayList<Pair<Long, String>>()

    @Volatile var port: Int? = null
        private set

    init {
        thread(isDaemon = true, name = "${sample.name}-output") {
            try {
                process.inputStream.bufferedReader().forEachLine { line ->
                    if (output.length < MAX_OUTPUT) output.append(line).append('\n')
                    if (timed.size < MAX_TIMED_LINES) timed += System.nanoTime() to line
                    if (port == null) PORT.find(line)?.let { port = it.groupValues[1].toInt() }
                }
            } catch (e: IOException) {
                // the JVM is gone
            }
        }
    }

    /** The port once the sample printed it, or [knownPort]. */
    fun awaitPort(knownPort: Int? = null): Int = knownPort ?: await("its port") { port }

    /** The pid in the first answer to `GET /` that is not [old], polling with short timeouts. */
    fun awaitAnswer(port: Int, old: Long? = null): Long = await("an answer from a worker other than $old") {
        try {
            pidIn(httpGet(port, "/", POLL_TIMEOUT_MILLIS))?.takeIf { it != old }
        } catch (e: IOException) {
            null
        }
    }

    fun pid(): Long = process.pid()

    /** The first line from the [index]-th on that matches [regex], waiting for it: its match and when it was read. */
    fun awaitLine(regex: Regex, index: Int = 0): Triple<MatchResult, Long, Int> = await("a line matching $regex") {
        (index until timed.size).firstNotNullOfOrNull { i -> regex.find(timed[i].second)?.let { Triple(it, timed[i].first, i) } }
    }

    /** How many lines the sample printed so far. */
    fun lines(): Int = timed.size

    private fun <T> await(what: String, probe: () -> T?): T {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(AWAIT_SECONDS)
        while (true) {
            probe()?.let { return it }
            check(process.isAlive) { "$sample exited ${process.exitValue()} while waiting for $what:\n$output" }
            check(System.nanoTime() < deadline) { "no $what from $sample within ${AWAIT_SECONDS}s:\n$output" }
            Thread.sleep(1)
        }
    }

    override fun close() {
        val all = process.descendants().toList()
        process.destroy()
        if (!process.waitFor(STOP_SECONDS, TimeUnit.SECONDS)) process.destroyForcibly()
        (all + process.descendants().toList()).filter { it.isAlive }.forEach { it.destroyForcibly() }
        process.waitFor()
    }

    companion object {
        private val PORT = Regex("http://127\\.0\\.0\\.1:(\\d+)")
        private const val POLL_TIMEOUT_MILLIS = 100
        private const val AWAIT_SECONDS = 120L
        private const val STOP_SECONDS = 30L
        private const val MAX_OUTPUT = 200_000
        private const val MAX_TIMED_LINES = 100_000

        fun freePort(): Int = java.net.ServerSocket(0).use { it.localPort }
    }
}

/** `GET [path]` over HTTP/1.0 on a fresh connection with [timeoutMillis] to connect and to read; the body of a 200. */
internal fun httpGet(port: Int, path: String, timeoutMillis: Int): String {
    Socket().use { socket ->
        socket.connect(InetSocketAddress("127.0.0.1", port), timeoutMillis)
        socket.soTimeout = timeoutMillis
        socket.getOutputStream().write("GET $path HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".toByteArray())
        val response = socket.getInputStream().readAllBytes().decodeToString()
        val split = response.indexOf("\r\n\r\n")
        if (!response.startsWith("HTTP/1.1 200") && !response.startsWith("HTTP/1.0 200") || split < 0) throw IOException("bad response: $response")
        return response.substring(split + 4)
    }
}

internal fun pidIn(body: String): Long? = Regex("pid (\\d+)").find(body)?.groupValues?.get(1)?.toLong()
