package dev.prefork.posix

/** Linux constants; x86_64 and aarch64 agree on every value used here. */
internal object Linux {
    const val O_RDONLY = 0
    const val O_WRONLY = 1
    const val O_RDWR = 2
    const val O_CREAT = 0x40
    const val O_NOCTTY = 0x100
    const val O_TRUNC = 0x200
    const val O_APPEND = 0x400
    const val O_NONBLOCK = 0x800
    const val O_CLOEXEC = 0x80000

    const val F_SETFD = 2
    const val FD_CLOEXEC = 1
    const val F_GETFL = 3
    const val F_SETFL = 4
    const val F_DUPFD_CLOEXEC = 1030
    const val F_SETPIPE_SZ = 1031

    /** ioctl: bytes waiting in a pipe. */
    const val FIONREAD = 0x541BL

    /** ioctls of terminals and pseudo-terminal masters (asm-generic values, which x86_64 and aarch64 use). */
    const val TCGETS = 0x5401L
    const val TCSETS = 0x5402L
    const val TIOCGWINSZ = 0x5413L
    const val TIOCSWINSZ = 0x5414L
    const val TIOCGPTN = 0x80045430L
    const val TIOCSPTLCK = 0x40045431L

    /** The kernel's struct termios, which TCGETS fills (asm-generic: 4 flag words, c_line, 19 c_cc): its size, c_lflag's offset, ECHO. */
    const val TERMIOS_SIZE = 36L
    const val TERMIOS_LFLAG = 12L
    const val ECHO = 0x8

    const val POSIX_SPAWN_SETPGROUP: Short = 0x02
    const val POSIX_SPAWN_SETSIGDEF: Short = 0x04
    const val POSIX_SPAWN_SETSIGMASK: Short = 0x08
    const val POSIX_SPAWN_SETSID: Short = 0x80

    const val WNOHANG = 1

    const val EPERM = 1
    const val EINTR = 4
    const val EIO = 5
    const val EAGAIN = 11
    const val ENOSYS = 38
    const val ESRCH = 3
    const val EPIPE = 32
    const val EINVAL = 22

    const val SYS_PIDFD_OPEN = 434L

    const val EPOLL_CLOEXEC = 0x80000
    const val EPOLL_CTL_ADD = 1
    const val EPOLL_CTL_DEL = 2
    const val EPOLL_CTL_MOD = 3
    const val POLLIN: Short = 0x001

    const val EPOLLIN = 0x001
    const val EPOLLOUT = 0x004

    /** For a pipe's read end: every write end is closed. */
    const val EPOLLHUP = 0x010
    const val EPOLLONESHOT = 1 shl 30

    const val EFD_CLOEXEC = 0x80000
    const val EFD_NONBLOCK = 0x800

    const val SIGKILL = 9
    const val SIGTERM = 15
    const val SIGCONT = 18
}
