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
    /** The exit code, or `-signal` when a signal killed the child. Java: `returnCode()`. */
    @get:JvmName("returnCode") public val returnCode: Int,
    /** The program and its arguments. Java: `command()`. */
    @get:JvmName("command") public val command: List<String>,
    /** What a checked `run()` captured from stdout, or null. Java: `stdout()`. */
    @get:JvmName("stdout") public val stdout: ByteArray? = null,
    /** What a checked `run()` captured from stderr, or null. Java: `stderr()`. */
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
    /** The program and its arguments. Java: `command()`. */
    @get:JvmName("command") public val command: List<String>,
    /** The time that ran out: the builder's `timeout`, or the wait's. Java: `timeout()`. */
    @get:JvmName("timeout") public val timeout: Duration,
    /** What `run()` had captured from stdout when time ran out, or null. Java: `stdout()`. */
    @get:JvmName("stdout") public val stdout: ByteArray? = null,
    /** What `run()` had captured from stderr when time ran out, or null. Java: `stderr()`. */
    @get:JvmName("stderr") public val stderr: ByteArray? = null,
) : IOException("Command $command timed out after ${timeout.toMillis()} ms")

/**
 * A `run()` child wrote more than `maxOutput` bytes to one captured [stream]; the child has
 * been terminated and reaped, and the output dropped.
 */
public class SubprocessOutputLimitException(
    /** The program and its arguments. Java: `command()`. */
    @get:JvmName("command") public val command: List<String>,
    /** The stream that went over. Java: `stream()`. */
    @get:JvmName("stream") public val stream: StdStream,
    /** The builder's `maxOutput`, in bytes. Java: `limit()`. */
    @get:JvmName("limit") public val limit: Int,
) : IOException("Command $command wrote more than $limit bytes to ${stream.name.lowercase()} (maxOutput)")

/** Called once with a child's return code when it exits; see [Subprocess.setExitCallback]. */
public fun interface ExitCallback {
    /**
     * Runs once, on a prefork background thread (never the reactor thread, so it may block),
     * with the exit code, or `-signal`. What it throws is logged and goes no further.
     */
    public fun onExit(returnCode: Int)
}

/** The supervisor gave up: workers failed more often than `maxRestarts` allows. Survivors were stopped first. */
public class TooManyRestartsException(message: String = "Too many child restarts, giving up") : RuntimeException(message)
