package dev.prefork.supervisor

import java.io.File
import java.io.IOException

/**
 * The command line that starts a worker: this JVM's own, read from `/proc/self/cmdline`
 * (exact, unlike `ProcessHandle.info()`, which truncates and drops empty arguments), with the
 * launcher replaced by its absolute path and the one JVM flag a worker needs to adopt
 * inherited sockets added right after it.
 */
internal object WorkerCommand {
    const val ADD_OPENS = "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED"

    fun ofThisJvm(): List<String> {
        val raw = try {
            File("/proc/self/cmdline").readBytes()
        } catch (e: IOException) {
            throw UnsupportedOperationException(
                "forkProcesses re-executes this JVM from /proc/self/cmdline, which this platform lacks " +
                    "(${e.message}); set ForkOptions.workerCommand",
                e,
            )
        }
        return fromCmdline(raw, ProcessHandle.current().info().command().orElse(null))
    }

    /** Splits NUL-terminated arguments, keeping empty ones. */
    fun fromCmdline(raw: ByteArray, executable: String?): List<String> {
        val text = String(raw, Charsets.UTF_8)
        val args = (if (text.endsWith('\u0000')) text.dropLast(1) else text).split('\u0000').toMutableList()
        check(args.isNotEmpty() && args[0].isNotEmpty()) { "empty /proc/self/cmdline" }
        if (executable != null) args[0] = executable
        if (isJavaLauncher(args[0]) && args.none { it == ADD_OPENS || it.startsWith("--add-opens=java.base/sun.nio.ch") }) {
            args.add(1, ADD_OPENS)
        }
        return args
    }

    private fun isJavaLauncher(path: String): Boolean = File(path).name.let { it == "java" || it == "java.exe" }
}
