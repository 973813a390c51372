package dev.prefork

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeoutOrNull
import java.io.IOException
import java.time.Duration

/** One `SubprocessBuilder.run()`: feeds stdin, captures stdout and stderr, waits, and never leaves the child running. */
internal class Run(
    private val command: List<String>,
    private val input: ByteArray?,
    private val timeout: Duration?,
    private val check: Boolean,
    private val maxOutput: Int,
) {
    /** [start] spawns the child; it runs on [Dispatchers.IO] and is not interrupted by cancellation. */
    suspend fun run(start: () -> Subprocess): CompletedProcess {
        var started: Subprocess? = null
        try {
            // Kept even if the caller is cancelled meanwhile (withContext would drop the result): the finally block ends it.
            withContext(NonCancellable + Dispatchers.IO) { started = start() }
            return communicate(started!!)
        } finally {
            started?.let {
                withContext(NonCancellable) {
                    it.terminateAndReap() // a no-op once it was reaped
                    it.close()
                }
            }
        }
    }

    private suspend fun communicate(process: Subprocess): CompletedProcess {
        val stdout = process.stdout?.let { Capture(it, "stdout") }
        val stderr = process.stderr?.let { Capture(it, "stderr") }
        val untilExit: suspend () -> ExitStatus = {
            coroutineScope {
                process.stdin?.let { stdin -> launch { feed(stdin) } }
                stdout?.let { launch { it.read() } }
                stderr?.let { launch { it.read() } }
            }
            process.waitForExit(raiseError = false)
            checkNotNull(process.exitStatus)
        }
        // Milliseconds, as kotlinx counts them; a timeout too large for a Long is none.
        val millis = timeout?.let { runCatching { it.toMillis() }.getOrNull() }
        val status = if (millis == null) untilExit() else withTimeoutOrNull(millis) { untilExit() }
        if (status == null) {
            // The captures stopped with the timeout: what they hold is all the child wrote until then.
            process.terminateAndReap()
            throw SubprocessTimeoutException(command, timeout!!, stdout?.bytes(), stderr?.bytes())
        }
        val completed = CompletedProcess(command, status, stdout?.bytes(), stderr?.bytes())
        return if (check) completed.checkReturnCode() else completed
    }

    private suspend fun feed(stdin: PipeWriter) {
        try {
            input?.let { stdin.write(it) }
        } catch (e: IOException) {
            // EPIPE, or the child exited first: a child need not read its input (Python ignores BrokenPipeError here too).
        }
        stdin.close()
    }

    /** The chunks of one stream as they arrive; read after the reading coroutine completed. */
    private inner class Capture(private val reader: PipeReader, private val stream: String) {
        private val chunks = ArrayList<ByteArray>()
        private var size = 0

        suspend fun read() {
            for (chunk in reader.channel) {
                if (chunk.size > maxOutput - size) throw SubprocessOutputLimitException(command, stream, maxOutput)
                chunks.add(chunk)
                size += chunk.size
            }
        }

        fun bytes(): ByteArray {
            if (chunks.size == 1) return chunks[0]
            val all = ByteArray(size)
            var offset = 0
            for (chunk in chunks) {
                System.arraycopy(chunk, 0, all, offset, chunk.size)
                offset += chunk.size
            }
            return all
        }
    }
}
