package dev.prefork

import java.io.IOException
import java.time.Duration

/**
 * A child ended with a non-zero [returnCode] (negative: killed by that signal) and the
 * caller asked for an error. Thrown by `waitForExit()` as Python's `subprocess` does, and by
 * a checked `run()`, which adds what it captured: [stdout] and [stderr] are null when not
 * captured (a `waitForExit`, or a stream redirected elsewhere).
 */
public class CalledProcessError @JvmOverloads constructor(
    @get:JvmName("returnCode") public val returnCode: Int,
    @get:JvmName("command") public val command: List<String>,
    @get:JvmName("stdout") public val stdout: ByteArray? = null,
    @get:JvmName("stderr") public val stderr: ByteArray? = null,
) : IOException(
    if (returnCode < 0) {
        "Command $command died with signal ${-returnCode}"
    } else {
        "Command $command returned non-zero exit status $returnCode"
    },
)

/**
 * A `run()` outlived its `timeout`, or a Java `waitForExit(Duration)` its wait. An
 * [IOException], as the JDK's `SocketTimeoutException` and `HttpTimeoutException` are: it is
 * one more way for a run to fail, caught with the others (spawn errors, [CalledProcessError]),
 * and never a kotlinx `TimeoutCancellationException`, which a coroutine would take for its own
 * cancellation.
 *
 * From `run()`, the child has been terminated and reaped, and [stdout] and [stderr] hold what
 * it wrote before (null when not captured). From `waitForExit(Duration)` they are null, and
 * the child is being terminated as when a coroutine's `waitForExit` is cancelled.
 */
public class SubprocessTimeoutException @JvmOverloads constructor(
    @get:JvmName("command") public val command: List<String>,
    @get:JvmName("timeout") public val timeout: Duration,
    @get:JvmName("stdout") public val stdout: ByteArray? = null,
    @get:JvmName("stderr") public val stderr: ByteArray? = null,
) : IOException("Command $command timed out after ${timeout.toMillis()} ms")

/**
 * A `run()` child wrote more than `maxOutput` bytes to one captured [stream] ("stdout" or
 * "stderr"); the child has been terminated and reaped, and the output dropped.
 */
public class SubprocessOutputLimitException(
    @get:JvmName("command") public val command: List<String>,
    @get:JvmName("stream") public val stream: String,
    @get:JvmName("limit") public val limit: Int,
) : IOException("Command $command wrote more than $limit bytes to $stream (maxOutput)")

/** Called once with a child's return code when it exits; see [Subprocess.setExitCallback]. */
public fun interface ExitCallback {
    public fun onExit(returnCode: Int)
}

/** The supervisor gave up: workers failed more often than `maxRestarts` allows. Survivors were stopped first. */
public class TooManyRestartsException(message: String = "Too many child restarts, giving up") : RuntimeException(message)
