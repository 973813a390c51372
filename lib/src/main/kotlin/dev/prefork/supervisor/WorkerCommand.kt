package dev.prefork.supervisor

import java.io.File
import java.io.IOException
import java.util.jar.JarFile

/**
 * The command line that starts a worker: this JVM's own, read from `/proc/self/cmdline`
 * (exact, unlike `ProcessHandle.info()`, which truncates and drops empty arguments), with the
 * launcher replaced by its absolute path and, unless the command already provides it, the one
 * JVM flag a worker needs to adopt inherited sockets added right after it.
 *
 * The flag is left out for `java -jar app.jar` when the jar's manifest says `Add-Opens:
 * java.base/sun.nio.ch`: the launcher then opens the package after the JVM started, and the
 * JVM keeps the module graph of its CDS archive, which an `--add-opens` flag makes it build
 * anew (15-25 ms of every worker's start, measured here).
 */
internal object WorkerCommand {
    const val ADD_OPENS = "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED"
    private const val PACKAGE = "java.base/sun.nio.ch"
    private const val OPENS = "--add-opens"

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
        if (isJavaLauncher(args[0]) && !opensSocketPackage(args)) args.add(1, ADD_OPENS)
        return args
    }

    /** Whether the command already opens `sun.nio.ch`: by a flag, or in the manifest of the jar it runs. */
    private fun opensSocketPackage(command: List<String>): Boolean {
        val options = jvmOptions(command)
        for (i in options.indices) {
            val option = options[i]
            if (option == "$OPENS=$PACKAGE=ALL-UNNAMED" || (option == OPENS && options.getOrNull(i + 1) == "$PACKAGE=ALL-UNNAMED")) return true
        }
        val rest = command.drop(1 + options.size)
        if (rest.firstOrNull() != "-jar") return false
        val jar = rest.getOrNull(1) ?: return false
        val opens = try {
            JarFile(jar).use { it.manifest?.mainAttributes?.getValue("Add-Opens") }
        } catch (e: IOException) {
            null
        }
        return opens != null && opens.split(' ').any { it == PACKAGE }
    }

    /** Options that take their value as the next argument, as the java launcher parses them. */
    private val WITH_VALUE = setOf(
        "-cp", "-classpath", "--class-path", "-p", "--module-path", "--upgrade-module-path", "--add-modules",
        "--limit-modules", "--add-reads", "--add-exports", "--add-opens", "--patch-module", "--enable-native-access",
    )

    /** The JVM options of a java [command]: what comes between the launcher and the main class, `-jar` or `-m`. */
    fun jvmOptions(command: List<String>): List<String> {
        val options = mutableListOf<String>()
        var i = 1
        while (i < command.size) {
            val arg = command[i]
            if (!arg.startsWith("-") || arg == "-jar" || arg == "-m" || arg == "--module" || arg.startsWith("--module=")) break
            options += arg
            if (arg in WITH_VALUE && i + 1 < command.size) options += command[++i]
            i++
        }
        return options
    }

    fun isJavaLauncher(path: String): Boolean = File(path).name.let { it == "java" || it == "java.exe" }
}
