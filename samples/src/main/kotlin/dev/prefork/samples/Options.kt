package dev.prefork.samples

/** The job runner's command line: `[--parallel N] [--merge-stderr] [--] [command ...]`. */
class Options(
    val parallel: Int,
    val mergeStderr: Boolean,
    /** One shell command per argument; null runs the built-in demo jobs. */
    val commands: List<String>?,
    val help: Boolean,
) {
    companion object {
        const val DEFAULT_PARALLEL: Int = 4

        val USAGE: String = """
            |usage: job-runner [--parallel N] [--merge-stderr] [--] [command ...]
            |  Runs each command with `setsid sh -c`, at most N at a time (default $DEFAULT_PARALLEL),
            |  and prints a summary. Without commands, runs a built-in demo list. Ctrl-C or SIGTERM
            |  stops every running job, including what its shell started.
            |  --merge-stderr  send stderr into stdout (Redirect.STDOUT) instead of tagging it 'err'
            |  exit code: 0 if every job succeeded (demo: ended as expected), 1 otherwise
        """.trimMargin()

        /** Throws [IllegalArgumentException] with a message for the user on a bad command line. */
        fun parse(args: Array<String>): Options {
            var parallel = DEFAULT_PARALLEL
            var merge = false
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
                    arg.startsWith("-") && arg.length > 1 -> throw IllegalArgumentException("unknown option: $arg")
                    else -> commands += arg
                }
            }
            return Options(parallel, merge, commands.takeIf { it.isNotEmpty() }, help)
        }

        private fun parseParallel(text: String): Int {
            val n = requireNotNull(text.toIntOrNull()) { "--parallel: not a number: $text" }
            require(n >= 1) { "--parallel < 1: $n" }
            return n
        }
    }
}
