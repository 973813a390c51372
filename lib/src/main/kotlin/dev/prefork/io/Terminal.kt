package dev.prefork.io

import dev.prefork.posix.Fds
import dev.prefork.posix.Pty

/**
 * The parent's control of a child's pseudo-terminal: a master fd of its own (the pumps' fds
 * close with their streams, and a closed fd number may be reused at once), for the window
 * size. Closed when the child was reaped, or its Subprocess closed; from then on [resize]
 * does nothing, as a signal to a reaped child does nothing.
 */
internal class Terminal(private val master: Int) {
    private var closed = false

    fun resize(columns: Int, rows: Int) {
        synchronized(this) {
            if (!closed) Pty.setWindowSize(master, columns, rows)
        }
    }

    fun close() {
        synchronized(this) {
            if (closed) return
            closed = true
            Fds.closeQuietly(master)
        }
    }
}
