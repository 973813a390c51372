package dev.prefork

import java.time.Duration
import java.util.Locale

/**
 * One worker as the supervisor sees it at a moment: what SIGUSR1 logs, and what [workerStatus]
 * returns to code in the supervisor process.
 *
 * @property id its task id, in `0 until n`.
 * @property pid its process id.
 * @property serving whether it said it is serving (false while it starts).
 * @property uptime how long it has had this id (a spare counts from when it took the id over).
 * @property restarts how often this id was restarted after an abnormal exit or a timeout, over
 *   the supervisor's life (recycling and rolling restarts are not restarts).
 * @property cpuTime the CPU time its process used, user and system (`/proc/<pid>/stat`); zero once it is gone.
 * @property rssBytes its resident memory (VmRSS of `/proc/<pid>/status`); 0 once it is gone.
 */
public class WorkerStatus internal constructor(
    @get:JvmName("id") public val id: Int,
    @get:JvmName("pid") public val pid: Long,
    @get:JvmName("serving") public val serving: Boolean,
    @get:JvmName("uptime") public val uptime: Duration,
    @get:JvmName("restarts") public val restarts: Int,
    @get:JvmName("cpuTime") public val cpuTime: Duration,
    @get:JvmName("rssBytes") public val rssBytes: Long,
) {
    /** `child 0 (pid 4242) serving, up 1h02m03s, 2 restarts, cpu 12.34 s, rss 145.2 MiB`: the line SIGUSR1 logs. */
    override fun toString(): String =
        "child $id (pid $pid) ${if (serving) "serving" else "starting"}, up ${clock(uptime)}, $restarts restart${if (restarts == 1) "" else "s"}, " +
            "cpu ${String.format(Locale.ROOT, "%.2f", cpuTime.toMillis() / 1_000.0)} s, rss ${String.format(Locale.ROOT, "%.1f", rssBytes / MIB)} MiB"

    private fun clock(d: Duration): String {
        val s = d.seconds
        return if (s >= 3_600) "%dh%02dm%02ds".format(s / 3_600, s / 60 % 60, s % 60) else if (s >= 60) "%dm%02ds".format(s / 60, s % 60) else "${s}s"
    }
}

private const val MIB = 1024.0 * 1024.0
