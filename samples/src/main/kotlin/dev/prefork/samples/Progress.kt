package dev.prefork.samples

import java.io.PrintStream
import java.nio.file.Files
import java.nio.file.Path
import kotlin.time.TimeSource

/**
 * Where the job runner's lines go, and how it shows progress: jobs finished, running, failed
 * and waiting.
 *
 * On a terminal ([live]) the counts sit on one status line at the bottom: every output line
 * first erases it (`CR`, `ESC [K`), is printed, and the status line is drawn again under it,
 * so job output scrolls by above a line that keeps changing. Anywhere else (a pipe, a file, a
 * CI log) nothing is redrawn and no escape code is written: a plain `[runner] progress:` line
 * follows each finished job instead, so the log reads the same in order.
 *
 * Every method is safe to call from any thread: jobs print concurrently.
 */
class Progress(private val out: PrintStream, private val live: Boolean, private val total: Int) {
    private val started = TimeSource.Monotonic.markNow()
    private var running = 0
    private var finished = 0
    private var failed = 0
    private var statusShown = false

    /** Prints one whole line above the status line. */
    @Synchronized
    fun line(text: String) {
        eraseStatus()
        out.println(text)
        drawStatus()
    }

    @Synchronized
    fun jobStarted() {
        running++
        redraw()
    }

    @Synchronized
    fun jobFinished(ok: Boolean) {
        running--
        finished++
        if (!ok) failed++
        if (live) redraw() else out.println("[runner] progress: ${counts()}")
    }

    /** Draws the status line again (the clock in it moves); does nothing off a terminal. */
    @Synchronized
    fun redraw() {
        eraseStatus()
        drawStatus()
    }

    /** Removes the status line for good: what follows (the summary) is ordinary output. */
    @Synchronized
    fun close() {
        eraseStatus()
        out.flush()
    }

    private fun counts(): String {
        val waiting = total - finished - running
        return "$finished of $total finished ($failed failed), $running running, $waiting waiting"
    }

    private fun drawStatus() {
        if (!live) return
        val seconds = started.elapsedNow().inWholeMilliseconds / 1000.0
        out.print("[runner] ${counts()}, %.1f s".format(seconds))
        out.flush()
        statusShown = true
    }

    private fun eraseStatus() {
        if (!statusShown) return
        out.print("\r$ERASE_LINE")
        statusShown = false
    }

    companion object {
        private const val ERASE_LINE = "\u001b[K"

        /**
         * Whether stdout is a terminal a status line can be redrawn on: Linux's `/proc/self/fd/1`
         * names a tty device, and `TERM` is not `dumb`. (`System.console()` answers for stdin
         * too, and on JDK 22+ it answers even when nothing is a terminal.)
         */
        fun stdoutIsTerminal(): Boolean {
            if (System.getenv("TERM").let { it == null || it == "dumb" }) return false
            val target = runCatching { Files.readSymbolicLink(Path.of("/proc/self/fd/1")).toString() }.getOrNull()
            return target != null && (target.startsWith("/dev/pts/") || target.startsWith("/dev/tty"))
        }
    }
}
