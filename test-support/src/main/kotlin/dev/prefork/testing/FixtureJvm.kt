package dev.prefork.testing

import java.io.IOException
import java.io.InputStream
import java.nio.file.Path
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.concurrent.thread

/**
 * A fixture `main` (or an executable [jar]) running in a fresh JVM (never this test JVM), its
 * output collected line by line, on this JVM's class path or [classPath]. [launcher] is a
 * command that execs the JVM in turn (`systemd-socket-activate -l ...`). [close] kills it and
 * every process it started, pass or fail.
 */
class FixtureJvm(
    mainClass: String?,
    args: List<String>,
    jvmFlags: List<String> = emptyList(),
    jar: Path? = null,
    logLevel: String = "info",
    environment: Map<String, String> = emptyMap(),
    classPath: String = System.getProperty("java.class.path"),
    launcher: List<String> = emptyList(),
) : AutoCloseable {
    val command: List<String> = buildList {
        addAll(launcher)
        // A JVM does not take over a signal it inherited as ignored (a CI runner under nohup ignores
        // SIGHUP), and ProcessBuilder passes ignored signals on: give the fixture default ones. env execs.
        addAll(listOf("env", "--default-signal=HUP,INT,TERM"))
        add(Path.of(System.getProperty("java.home"), "bin", "java").toString())
        addAll(System.getProperty("prefork.test.nativeFlags", "--enable-native-access=ALL-UNNAMED").split(" ").filter { it.isNotBlank() })
        add("-Dorg.slf4j.simpleLogger.defaultLogLevel=$logLevel")
        add("-Xshare:auto")
        // The C binding the test JVM was asked for, so a fixture runs on it too.
        System.getProperty("prefork.native")?.let { add("-Dprefork.native=$it") }
        // Where the C functions it calls are written down (lib's fall-back pass; CallRecorder).
        System.getProperty("prefork.native.calls")?.let { add("-Dprefork.native.calls=$it") }
        addAll(jvmFlags)
        if (jar != null) {
            add("-jar")
            add(jar.toString())
        } else {
            add("-cp")
            add(classPath)
            add(requireNotNull(mainClass) { "a fixture needs a main class or a jar" })
        }
        addAll(args)
    }
    val process: Process = ProcessBuilder(command).apply { environment().putAll(environment) }.start()
    val pid: Long get() = process.pid()
    private val lines = LinkedBlockingQueue<String>()
    private val stdout = StringBuffer()
    private val stderr = StringBuffer()
    private val readers = listOf(
        readLines(process.inputStream) {
            stdout.append(it).append('\n')
            lines.put(it)
        },
        readLines(process.errorStream) { stderr.append(it).append('\n') },
    )

    /**
     * Reads [stream] line by line on a thread of its own until it ends. When the process exits,
     * the JDK drains and closes its pipes, and a read then under way fails with "Stream closed":
     * that ends the reading too, without a stack trace on the test's output.
     */
    private fun readLines(stream: InputStream, line: (String) -> Unit): Thread = thread(isDaemon = true) {
        try {
            stream.bufferedReader().forEachLine(line)
        } catch (e: IOException) {
            // closed by the JDK after the exit
        }
    }

    /** The next stdout line matching [regex], waiting at most [seconds]. */
    fun awaitLine(regex: Regex, seconds: Long = 30): MatchResult {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds)
        while (true) {
            val left = deadline - System.nanoTime()
            val line = lines.poll(maxOf(left, 0), TimeUnit.NANOSECONDS)
                ?: throw AssertionError("no line matching $regex within ${seconds}s; stdout:\n$stdout\nstderr:\n$stderr")
            regex.find(line)?.let { return it }
        }
    }

    /** The exit code, waiting at most [seconds]; fails (and the fixture is killed on close) if it does not exit. */
    fun exitCode(seconds: Long = 60): Int {
        if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
            throw AssertionError("fixture did not exit within ${seconds}s; stdout:\n$stdout\nstderr:\n$stderr")
        }
        readers.forEach { it.join(5_000) }
        return process.exitValue()
    }

    fun stdout(): String = stdout.toString()
    fun stderr(): String = stderr.toString()

    fun signal(signal: Int) {
        Runtime.getRuntime().exec(arrayOf("kill", "-$signal", pid.toString())).waitFor()
    }

    override fun close() {
        val all = process.descendants().toList() + process.toHandle()
        all.forEach { it.destroyForcibly() }
        all.forEach { it.onExit().get(10, TimeUnit.SECONDS) }
    }
}

/** Sends [signal] to [pid] with kill(1). */
fun kill(pid: Long, signal: Int) {
    Runtime.getRuntime().exec(arrayOf("kill", "-$signal", pid.toString())).waitFor()
}
