package dev.prefork.posix

import dev.prefork.posix.Native.posix

/** Native memory for the length of [block]: zeroed, freed after it even when it throws. */
internal inline fun <T> withNativeMemory(bytes: Long, block: (address: Long) -> T): T {
    val address = posix.allocate(bytes)
    try {
        return block(address)
    } finally {
        posix.free(address)
    }
}

/** File-descriptor plumbing: pipes, opens, flags, reads and writes, each failure naming its fd or path. */
internal object Fds {
    /** A close-on-exec pipe: `[read end, write end]`. */
    fun pipe(): IntArray = withNativeMemory(8) { fds ->
        checkErrno(posix.pipe2(fds, Linux.O_CLOEXEC)) { "pipe2" }
        intArrayOf(posix.getInt(fds), posix.getInt(fds + 4))
    }

    /** Opens [path] close-on-exec, as the parent's end of a redirect. */
    fun open(path: String, flags: Int, mode: Int = 0x1b6): Int {
        val cPath = posix.cString(path)
        try {
            return checkErrno(posix.open(cPath, flags or Linux.O_CLOEXEC, mode)) { "open \"$path\"" }
        } finally {
            posix.free(cPath)
        }
    }

    fun setNonBlocking(fd: Int) {
        val flags = checkErrno(posix.fcntl(fd, Linux.F_GETFL, 0)) { "fcntl(F_GETFL) fd $fd" }
        checkErrno(posix.fcntl(fd, Linux.F_SETFL, flags or Linux.O_NONBLOCK)) { "fcntl(F_SETFL) fd $fd" }
    }

    fun setCloseOnExec(fd: Int) {
        checkErrno(posix.fcntl(fd, Linux.F_SETFD, Linux.FD_CLOEXEC)) { "fcntl(F_SETFD, FD_CLOEXEC) fd $fd" }
    }

    /** A close-on-exec duplicate of [fd] numbered at least [atLeast]. */
    fun dupAbove(fd: Int, atLeast: Int): Int =
        checkErrno(posix.fcntl(fd, Linux.F_DUPFD_CLOEXEC, atLeast)) { "fcntl(F_DUPFD_CLOEXEC) fd $fd" }

    /** Asks the kernel for a larger pipe buffer; a refusal (pipe-user-pages limits) is not an error. */
    fun growPipe(fd: Int, bytes: Int): Boolean = posix.fcntl(fd, Linux.F_SETPIPE_SZ, bytes) >= 0

    /** How many bytes wait in the pipe [fd] (FIONREAD). */
    fun available(fd: Int): Int = withNativeMemory(8) { count ->
        checkErrno(posix.ioctlInt(fd, Linux.FIONREAD, count)) { "ioctl(FIONREAD) fd $fd" }
        posix.getInt(count)
    }

    /**
     * Blocks the calling thread up to [timeoutMillis] (-1: without limit) until [fd] is
     * readable (or hung up). For a stream in full flow, a short wait here is far cheaper than
     * a round trip through the reactor thread for every chunk.
     */
    fun pollReadable(fd: Int, timeoutMillis: Int): Boolean = withNativeMemory(8) { pollFd ->
        posix.putInt(pollFd, fd)
        posix.putShort(pollFd + 4, Linux.POLLIN)
        var ready = posix.poll(pollFd, 1, timeoutMillis)
        while (ready < 0 && Native.errno() == Linux.EINTR) ready = posix.poll(pollFd, 1, timeoutMillis)
        if (ready < 0) throw errnoException("poll fd $fd")
        ready > 0
    }

    /**
     * Reads from the non-blocking fd [fd] straight into [bytes]: the count, -1 at end of
     * stream, 0 when nothing is there yet (EAGAIN). With [eioEnds] (a pseudo-terminal's master,
     * which reads EIO once no process holds the terminal open any more) EIO is the end too.
     *
     * @throws ErrnoException naming [what].
     */
    fun read(fd: Int, bytes: ByteArray, offset: Int, length: Int, eioEnds: Boolean = false, what: () -> String): Int {
        require(length > 0) { "length <= 0: $length" } // 0 would read as the end of the stream
        while (true) {
            val count = posix.readArray(fd, bytes, offset, length)
            if (count > 0) return count.toInt()
            if (count == 0L) return -1
            when (val errno = Native.errno()) {
                Linux.EAGAIN -> return 0
                Linux.EINTR -> {}
                Linux.EIO -> if (eioEnds) return -1 else throw errnoException("read from ${what()}", errno)
                else -> throw errnoException("read from ${what()}", errno)
            }
        }
    }

    /**
     * Writes what the non-blocking fd [fd] takes now of [bytes]: the count, 0 when the pipe
     * is full (EAGAIN).
     *
     * @throws ErrnoException naming [what] (EPIPE: the reader is gone).
     */
    fun write(fd: Int, bytes: ByteArray, offset: Int, length: Int, what: () -> String): Int {
        while (true) {
            val count = posix.writeArray(fd, bytes, offset, length)
            if (count >= 0) return count.toInt()
            when (val errno = Native.errno()) {
                Linux.EAGAIN -> return 0
                Linux.EINTR -> {}
                Linux.EPIPE -> throw ErrnoException("${what()}: the process closed its end of the pipe (EPIPE)", errno)
                else -> throw errnoException("write to ${what()}", errno)
            }
        }
    }

    /**
     * Writes [bytes] to the pipe [fd] in one call: at most `PIPE_BUF` (4096) bytes, which a
     * pipe takes whole or not at all, so an empty pipe never blocks it.
     *
     * @throws ErrnoException naming [what] (EPIPE: the reader is gone).
     */
    fun writeSmall(fd: Int, bytes: ByteArray, what: String) {
        require(bytes.size <= PIPE_BUF) { "more than $PIPE_BUF bytes: ${bytes.size}" }
        withNativeMemory(bytes.size.toLong()) { buffer ->
            posix.putBytes(buffer, bytes, 0, bytes.size)
            val written = posix.write(fd, buffer, bytes.size.toLong())
            if (written < 0) throw errnoException("write to $what")
            check(written == bytes.size.toLong()) { "short write to $what: $written of ${bytes.size} bytes" }
        }
    }

    private const val PIPE_BUF = 4096

    /** Closes [fd], ignoring errors: by then there is nothing useful to do about them. */
    fun closeQuietly(fd: Int) {
        if (fd >= 0) posix.close(fd)
    }
}
