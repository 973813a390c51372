package dev.prefork

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeoutOrNull
import java.io.IOException
import java.time.Duration

/**
 * One `run()` of a child, or of a pipeline's members: feeds the first one's stdin, captures
 * every stdout and stderr it has a pipe for, waits for them all, and never leaves one running.
 * [command] names the run in a timeout: the child's, or the pipeline's.
 */
internal class Run(
    private val command: List<String>,
    private val input: ByteArray?,
    private val timeout: Duration?,
    private val maxOutput: Int,
) {
    /**
     * [start] spawns the children, first to last (the pipeline's order); it runs on
     * [Dispatchers.IO] and is not interrupted by cancellation. If it throws, it has ended what it
     * had started.
     */
    suspend fun run(start: () -> List<Subprocess>): List<CompletedProcess> {
        var started: List<Subprocess>? = null
        try {
            // Kept even if the caller is cancelled meanwhile (withContext would drop the result): the finally block ends them.
            withContext(NonCancellable + Dispatchers.IO) { started = start() }
            return communicate(started!!)
        } finally {
            started?.let { processes ->
                withContext(NonCancellable) {
                    coroutineScope { for (process in processes) launch { process.terminateAndReap() } } // a no-op once reaped
                    for (process in processes) process.close()
                }
            }
        }
    }

    private suspend fun communicate(processes: List<Subprocess>): List<CompletedProcess> {
        val stdouts = processes.map { process -> process.stdout?.let { Capture(it, process.command, StdStream.STDOUT) } }
        val stderrs = processes.map { process -> process.stderr?.let { Capture(it, process.command, StdStream.STDERR) } }
        val untilExit: suspend () -> List<ExitStatus> = {
            coroutineScope {
                processes[0].stdin?.let { stdin -> launch { feed(stdin) } }
                for (capture in stdouts + stderrs) capture?.let { launch { it.read() } }
            }
            processes.map { process ->
                process.waitForExit(raiseError = false)
                checkNotNull(process.exitStatus)
            }
        }
        // Milliseconds, as kotlinx counts them; a timeout too large for a Long is none.
        val millis = timeout?.let { runCatching { it.toMillis() }.getOrNull() }
        val statuses = if (millis == null) untilExit() else withTimeoutOrNull(millis) { untilExit() }
        if (statuses == null) {
            // The captures stopped with the timeout: what they hold is all the children wrote until then.
            coroutineScope { for (process in processes) launch { process.terminateAndReap() } }
            // A pipeline's stderr streams are several: none of them stands for the run's.
            val stderr = if (processes.size == 1) stderrs[0]?.bytes() else null
            throw SubprocessTimeoutException(command, timeout!!, stdouts.last()?.bytes(), stderr)
        }
        return processes.indices.map { CompletedProcess(processes[it].command, statuses[it], stdouts[it]?.bytes(), stderrs[it]?.bytes()) }
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
    private inner class Capture(private val reader: PipeReader, private val command: List<String>, private val stream: StdStream) {
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

/** The largest array HotSpot allocates: the default and the ceiling of `maxOutput`. */
internal const val MAX_ARRAY = Int.MAX_VALUE - 8
