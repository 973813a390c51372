package dev.prefork.posix

import dev.prefork.posix.Native.posix

/** `pidfd_open(2)`: Linux 5.3+. The fd becomes readable when the process exits. */
internal object Pidfd {
    /**
     * A close-on-exec pidfd for [pid], or null where the kernel lacks the call (ENOSYS) or a
     * seccomp policy refuses it (EPERM), or the pid is already gone (ESRCH); the caller then
     * falls back to polling `wait4`.
     */
    fun open(pid: Int): Int? {
        val fd = posix.syscall(Linux.SYS_PIDFD_OPEN, pid.toLong(), 0L).toInt()
        if (fd >= 0) return fd
        val errno = Native.errno()
        // ESRCH: already reaped by someone else (SIGCHLD ignored); polling wait4 then reports it.
        if (errno == Linux.ENOSYS || errno == Linux.EPERM || errno == Linux.ESRCH) return null
        throw errnoException("pidfd_open pid $pid", errno)
    }

}
