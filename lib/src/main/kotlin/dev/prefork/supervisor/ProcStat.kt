package dev.prefork.supervisor

import java.io.IOException
import java.nio.file.Files
import java.nio.file.Path

/** A process's resident memory and CPU time, from `/proc`: what recycling and the status report need. */
internal object ProcStat {
    /** Resident memory in bytes (VmRSS of `/proc/<pid>/status`), or 0 when the process is gone. */
    fun rssBytes(pid: Long): Long {
        val lines = try {
            Files.readAllLines(Path.of("/proc/$pid/status"))
        } catch (e: IOException) {
            return 0
        }
        // "VmRSS:	  145236 kB"; a zombie has no such line.
        val line = lines.firstOrNull { it.startsWith("VmRSS:") } ?: return 0
        return line.substring("VmRSS:".length).trim().substringBefore(' ').toLongOrNull()?.times(1024) ?: 0
    }

    /** User plus system CPU time in nanoseconds (`/proc/<pid>/stat`, fields 14 and 15), or 0 when the process is gone. */
    fun cpuNanos(pid: Long): Long {
        val stat = try {
            Files.readString(Path.of("/proc/$pid/stat"))
        } catch (e: IOException) {
            return 0
        }
        // The command name, field 2, is in parentheses and may hold spaces or ')': fields count from the last ')'.
        val fields = stat.substring(stat.lastIndexOf(')') + 2).split(' ')
        val ticks = (fields.getOrNull(UTIME)?.toLongOrNull() ?: 0) + (fields.getOrNull(STIME)?.toLongOrNull() ?: 0)
        return ticks * (1_000_000_000L / USER_HZ)
    }

    /** Fields 14 and 15 of the whole line, counted from field 3 (the state) after the name. */
    private const val UTIME = 14 - 3
    private const val STIME = 15 - 3

    /** The kernel reports times to user space in USER_HZ, 100 on every Linux architecture the JDK runs on. */
    private const val USER_HZ = 100L
}
