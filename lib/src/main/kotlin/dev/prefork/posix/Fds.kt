package dev.prefork.posix

import dev.prefork.posix.Native.libc

/** File-descriptor plumbing: pipes, opens, flags and closes, each failure naming its fd or path. */
internal object Fds {
    /** A close-on-exec pipe: `[read end, write end]`. */
    fun pipe(): IntArray {
        val fds = IntArray(2)
        checkErrno(libc.pipe2(fds, Linux.O_CLOEXEC)) { "pipe2" }
        return fds
    }

    /** Opens [path] close-on-exec, as the parent's end of a redirect. */
    fun open(path: String, flags: Int, mode: Int = 0x1b6): Int =
        checkErrno(libc.open(path, flags or Linux.O_CLOEXEC, mode)) { "open \"$path\"" }

    fun setNonBlocking(fd: Int) {
        val flags = checkErrno(libc.fcntl(fd, Linux.F_GETFL, 0)) { "fcntl(F_GETFL) fd $fd" }
        checkErrno(libc.fcntl(fd, Linux.F_SETFL, flags or Linux.O_NONBLOCK)) { "fcntl(F_SETFL) fd $fd" }
    }

    /** A close-on-exec duplicate of [fd] numbered at least [atLeast]. */
    fun dupAbove(fd: Int, atLeast: Int): Int =
        checkErrno(libc.fcntl(fd, Linux.F_DUPFD_CLOEXEC, atLeast)) { "fcntl(F_DUPFD_CLOEXEC) fd $fd" }

    /** Asks the kernel for a larger pipe buffer; a refusal (pipe-user-pages limits) is not an error. */
    fun growPipe(fd: Int, bytes: Int): Boolean = libc.fcntl(fd, Linux.F_SETPIPE_SZ, bytes) >= 0

    private val scratchPollFd = ThreadLocal.withInitial { jnr.ffi.Memory.allocateDirect(Native.runtime, 8L, true) }

    /**
     * Blocks the calling thread up to [timeoutMillis] until [fd] is readable (or hung up).
     * For a stream in full flow, a short wait here is far cheaper than a round trip through
     * the reactor thread for every chunk.
     */
    fun pollReadable(fd: Int, timeoutMillis: Int): Boolean {
        val pollFd = scratchPollFd.get()
        pollFd.putInt(0, fd)
        pollFd.putShort(4, Linux.POLLIN)
        pollFd.putShort(6, 0)
        return libc.poll(pollFd, 1, timeoutMillis) > 0
    }

    /**
     * Writes [bytes] to the pipe [fd] in one call: at most `PIPE_BUF` (4096) bytes, which a
     * pipe takes whole or not at all, so an empty pipe never blocks it.
     *
     * @throws ErrnoException naming [what] (EPIPE: the reader is gone).
     */
    fun writeSmall(fd: Int, bytes: ByteArray, what: String) {
        require(bytes.size <= PIPE_BUF) { "more than $PIPE_BUF bytes: ${bytes.size}" }
        val buffer = jnr.ffi.Memory.allocateDirect(Native.runtime, bytes.size.toLong())
        buffer.put(0, bytes, 0, bytes.size)
        val written = libc.write(fd, buffer, bytes.size.toLong())
        if (written < 0) throw errnoException("write to $what")
        check(written == bytes.size.toLong()) { "short write to $what: $written of ${bytes.size} bytes" }
    }

    private const val PIPE_BUF = 4096

    /** Closes [fd], ignoring errors: by then there is nothing useful to do about them. */
    fun closeQuietly(fd: Int) {
        if (fd >= 0) libc.close(fd)
    }
}
