package dev.prefork.samples

import java.util.Locale

/** The job runner's closing table: one row per job, with what `wait4` told about it. */
object SummaryTable {
    private val HEADERS = listOf("job", "status", "wall", "cpu user+sys", "max RSS", "command")
    private val NUMERIC = setOf(0, 2, 3, 4)
    private const val COMMAND_WIDTH = 44

    /**
     * Linux folds the address space a child was spawned from into its `ru_maxrss` when it
     * calls exec, and posix_spawn runs the child in the JVM's address space until then.
     */
    val RSS_NOTE: String
        get() = "max RSS is wait4's ru_maxrss: on Linux it includes the JVM's own peak at spawn time" +
            (jvmPeakRss()?.let { " (now ${mebibytes(it)})" } ?: "") + ", so only values above that are the job's"

    fun render(results: List<JobResult>): String {
        val rows = results.map { row(it) }
        val widths = HEADERS.indices.map { column -> (rows + listOf(HEADERS)).maxOf { it[column].length } }
        fun line(cells: List<String>) = cells.mapIndexed { column, cell ->
            if (column in NUMERIC) cell.padStart(widths[column]) else cell.padEnd(widths[column])
        }.joinToString("  ").trimEnd()
        return buildString {
            appendLine(line(HEADERS))
            appendLine(widths.joinToString("  ") { "-".repeat(it) })
            rows.forEach { appendLine(line(it)) }
        }
    }

    private fun row(result: JobResult): List<String> {
        val status = result.status
        return listOf(
            result.id.toString(),
            when {
                status == null -> "not started"
                result.timedOut -> "timed out"
                status.signal != null -> "signal ${status.signal}"
                else -> "exit ${status.exitCode}"
            },
            seconds(result.wallNanos),
            status?.let { "${decimal(it.userCpuTime.toNanos())}+${seconds(it.systemCpuTime.toNanos())}" } ?: "-",
            status?.let { mebibytes(it.maxRssBytes) } ?: "-",
            result.spec.command.let { if (it.length <= COMMAND_WIDTH) it else it.take(COMMAND_WIDTH - 3) + "..." },
        )
    }

    fun seconds(nanos: Long): String = decimal(nanos) + " s"

    private fun decimal(nanos: Long): String = String.format(Locale.ROOT, "%.3f", nanos / 1e9)

    /** VmHWM of this JVM, or null where /proc does not tell. */
    private fun jvmPeakRss(): Long? = runCatching {
        java.io.File("/proc/self/status").useLines { lines ->
            lines.firstOrNull { it.startsWith("VmHWM:") }?.split(Regex("\\s+"))?.get(1)?.toLong()?.times(1024)
        }
    }.getOrNull()

    private fun mebibytes(bytes: Long): String = String.format(Locale.ROOT, "%.1f MiB", bytes / (1024.0 * 1024.0))
}
