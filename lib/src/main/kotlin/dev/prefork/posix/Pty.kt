package dev.prefork.posix

import dev.prefork.posix.Native.posix

/**
 * Pseudo-terminals, with the calls the binding has already (`open`, `ioctl`): what glibc's
 * `posix_openpt`, `unlockpt` and `ptsname_r` do on Linux. `grantpt` has nothing left to do
 * there: devpts gives the terminal to the process that opened the master.
 */
internal object Pty {
    /** The largest value of a `struct winsize` field (unsigned short). */
    const val MAX_SIZE = 0xffff

    /** A new terminal: its master (close-on-exec, not this process's controlling terminal) and its path, `/dev/pts/N`. */
    class Opened(val master: Int, val path: String)

    fun open(): Opened {
        val master = Fds.open("/dev/ptmx", Linux.O_RDWR or Linux.O_NOCTTY)
        try {
            val number = withNativeMemory(8) { value ->
                // Unlocked (value 0) before anyone can open the terminal's own end.
                checkErrno(posix.ioctlInt(master, Linux.TIOCSPTLCK, value)) { "ioctl(TIOCSPTLCK) /dev/ptmx fd $master" }
                checkErrno(posix.ioctlInt(master, Linux.TIOCGPTN, value)) { "ioctl(TIOCGPTN) /dev/ptmx fd $master" }
                posix.getInt(value)
            }
            return Opened(master, "/dev/pts/$number")
        } catch (t: Throwable) {
            Fds.closeQuietly(master)
            throw t
        }
    }

    /** Sets the window size of the terminal of [fd] (its master or its own end); its foreground process group gets SIGWINCH. */
    fun setWindowSize(fd: Int, columns: Int, rows: Int) {
        withNativeMemory(8) { size ->
            posix.putShort(size, rows.toShort())
            posix.putShort(size + 2, columns.toShort())
            checkErrno(posix.ioctlInt(fd, Linux.TIOCSWINSZ, size)) { "ioctl(TIOCSWINSZ) fd $fd" }
        }
    }

    /** The window size of the terminal of [fd]: `[columns, rows]`. */
    fun windowSize(fd: Int): IntArray = withNativeMemory(8) { size ->
        checkErrno(posix.ioctlInt(fd, Linux.TIOCGWINSZ, size)) { "ioctl(TIOCGWINSZ) fd $fd" }
        val both = posix.getInt(size)
        intArrayOf((both ushr 16) and 0xffff, both and 0xffff)
    }

    /** Turns the line discipline's echo of input on or off; on a master it is the terminal's own end that echoes. */
    fun setEcho(fd: Int, echo: Boolean) {
        withNativeMemory(Linux.TERMIOS_SIZE) { termios ->
            checkErrno(posix.ioctlInt(fd, Linux.TCGETS, termios)) { "ioctl(TCGETS) fd $fd" }
            val flags = posix.getInt(termios + Linux.TERMIOS_LFLAG)
            posix.putInt(termios + Linux.TERMIOS_LFLAG, if (echo) flags or Linux.ECHO else flags and Linux.ECHO.inv())
            checkErrno(posix.ioctlInt(fd, Linux.TCSETS, termios)) { "ioctl(TCSETS) fd $fd" }
        }
    }
}
