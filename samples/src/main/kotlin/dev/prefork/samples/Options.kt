package dev.prefork.samples

import java.time.Duration

/** The job runner's command line: `[--parallel N] [--merge-stderr] [--timeout S] [--progress WHEN] [--] [command ...]`. */
class Options(
    val parallel: Int,
    val mergeStderr: Boolean,
    /** Each job's time limit; null for none. */
    val timeout: Duration?,
    val progress: ProgressMode,
    /** One shell command per argument; null runs the built-in demo jobs. */
    val commands: List<String>?,
    val help: Boolean,
) {
    companion object {
        const val DEFAULT_PARALLEL: Int = 4

        val USAGE: String = """
            |usage: job-runner [--parallel N] [--merge-stderr] [--timeout S] [--progress WHEN] [--] [command ...]
            |  Runs each command with `setsid sh -c`, at most N at a time (default $DEFAULT_PARALLEL),
            |  and prints a summary. Without commands, runs a built-in demo list. Ctrl-C or SIGTERM
            |  stops every running job, including what its shell started.
            |  --merge-stderr    send stderr into stdout (Redirect.STDOUT) instead of tagging it 'err'
            |  --timeout S       stop a job (its whole process group) after S seconds: it failed
            |  --progress WHEN   auto (default): a live status line when stdout is a terminal,
            |                    plain progress lines otherwise; always; never
            |  exit code: 0 if every job succeeded (demo: ended as expected), 1 otherwise
        """.trimMargin()

        /** Throws [IllegalArgumentException] with a message for the user on a bad command line. */
        fun parse(args: Array<String>): Options {
            var parallel = DEFAULT_PARALLEL
            var merge = false
            var timeout: Duration? = null
            var progress = ProgressMode.AUTO
            var help = false
            val commands = mutableListOf<String>()
            var i = 0
            while (i < args.size) {
                val arg = args[i++]
                when {
                    arg == "--" -> { commands += args.drop(i); break }
                    arg == "--help" || arg == "-h" -> help = true
                    arg == "--merge-stderr" -> merge = true
                    arg == "--parallel" || arg == "-j" -> {
                        require(i < args.size) { "$arg needs a number" }
                        parallel = parseParallel(args[i++])
                    }
                    arg.startsWith("--parallel=") -> parallel = parseParallel(arg.substringAfter('='))
                    arg == "--timeout" -> {
                        require(i < args.size) { "$arg needs a number of seconds" }
                        timeout = parseTimeout(args[i++])
                    }
                    arg.startsWith("--timeout=") -> timeout = parseTimeout(arg.substringAfter('='))
                    arg == "--progress" -> {
                        require(i < args.size) { "$arg needs auto, always or never" }
                        progress = ProgressMode.parse(args[i++])
                    }
                    arg.startsWith("--progress=") -> progress = ProgressMode.parse(arg.substringAfter('='))
                    arg.startsWith("-") && arg.length > 1 -> throw IllegalArgumentException("unknown option: $arg")
                    else -> commands += arg
                }
            }
            return Options(parallel, merge, timeout, progress, commands.takeIf { it.isNotEmpty() }, help)
        }

        private fun parseParallel(text: String): Int {
            val n = requireNotNull(text.toIntOrNull()) { "--parallel: not a number: $text" }
            require(n >= 1) { "--parallel < 1: $n" }
            return n
        }

        private fun parseTimeout(text: String): Duration {
            val seconds = requireNotNull(text.toDoubleOrNull()) { "--timeout: not a number of seconds: $text" }
            require(seconds > 0 && seconds <= MAX_TIMEOUT_SECONDS) { "--timeout: not in (0, $MAX_TIMEOUT_SECONDS] seconds: $text" }
            return Duration.ofNanos((seconds * 1e9).toLong())
        }

        private const val MAX_TIMEOUT_SECONDS = 86_400 * 365L
    }
}

/** When the job runner draws its live status line. */
enum class ProgressMode {
    /** When stdout is a terminal ([Progress.stdoutIsTerminal]). */
    AUTO,
    ALWAYS,
    NEVER;

    companion object {
        fun parse(text: String): ProgressMode =
            entries.firstOrNull { it.name.equals(text, ignoreCase = true) }
                ?: throw IllegalArgumentException("--progress: not auto, always or never: $text")
    }
}
