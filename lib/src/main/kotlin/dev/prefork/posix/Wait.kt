package dev.prefork.posix

import dev.prefork.posix.Native.posix

/**
 * What `wait4` reported for one child: its raw wait status, decoded, and its resource usage.
 * CPU times are in microseconds; [maxRssKiB] is Linux's `ru_maxrss`, in KiB.
 */
internal class WaitResult(
    val status: Int,
    val userMicros: Long,
    val systemMicros: Long,
    val maxRssKiB: Long,
) {
    val exited: Boolean get() = status and 0x7f == 0
    val exitCode: Int get() = (status shr 8) and 0xff
    val termSignal: Int get() = status and 0x7f
    val signaled: Boolean get() = termSignal != 0 && termSignal != 0x7f
    val coreDumped: Boolean get() = signaled && status and 0x80 != 0

    /** Tornado's return code: the exit code, or minus the signal that killed the child. */
    val returnCode: Int get() = if (signaled) -termSignal else exitCode
}

internal object Wait {
    private const val RUSAGE_SIZE = 144L
    private const val STATUS = RUSAGE_SIZE

    /**
     * Reaps [pid] if it has exited (`WNOHANG`), or returns null while it runs. Only ever our
     * own pid: `wait4(-1)` would steal exit statuses from `java.lang.Process`.
     */
    fun reap(pid: Int): WaitResult? {
        require(pid > 0) { "pid <= 0: $pid" }
        return withNativeMemory(RUSAGE_SIZE + 8) { usage ->
            var result = posix.wait4(pid, usage + STATUS, Linux.WNOHANG, usage)
            while (result < 0 && Native.errno() == Linux.EINTR) result = posix.wait4(pid, usage + STATUS, Linux.WNOHANG, usage)
            if (result < 0) throw errnoException("wait4 pid $pid")
            if (result == 0) {
                null
            } else {
                WaitResult(
                    status = posix.getInt(usage + STATUS),
                    userMicros = posix.getLong(usage) * 1_000_000 + posix.getLong(usage + 8),
                    systemMicros = posix.getLong(usage + 16) * 1_000_000 + posix.getLong(usage + 24),
                    maxRssKiB = posix.getLong(usage + 32),
                )
            }
        }
    }

    /** Sends [signal] to [pid] (a negative pid: to that process group); false if there is no such process. */
    fun kill(pid: Int, signal: Int): Boolean {
        if (posix.kill(pid, signal) == 0) return true
        val errno = Native.errno()
        if (errno == Linux.ESRCH) return false
        throw errnoException("kill pid $pid signal $signal", errno)
    }
}
