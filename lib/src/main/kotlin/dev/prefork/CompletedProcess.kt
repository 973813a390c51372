package dev.prefork

import java.nio.charset.Charset

/**
 * A child that `run()` ran to its end, Python's `CompletedProcess`: its [returnCode] (negative:
 * killed by that signal), [exitStatus], and what it wrote.
 *
 * [stdout] and [stderr] are null when that stream was not captured: redirected elsewhere by
 * the builder, or stderr merged into stdout with [Redirect.STDOUT]. The arrays are this
 * object's; they are not copied for each call.
 */
public class CompletedProcess internal constructor(
    /** The program and its arguments, as given to the builder. Java: `command()`. */
    @get:JvmName("command") public val command: List<String>,
    /** How the child ended: exit code or signal, CPU time, peak RSS. Java: `exitStatus()`. */
    @get:JvmName("exitStatus") public val exitStatus: ExitStatus,
    /** Everything the child wrote to stdout, or null when not captured. Java: `stdout()`. */
    @get:JvmName("stdout") public val stdout: ByteArray?,
    /** Everything the child wrote to stderr, or null when not captured. Java: `stderr()`. */
    @get:JvmName("stderr") public val stderr: ByteArray?,
) {
    /** The exit code, or `-signal` when a signal killed the child ([ExitStatus.returnCode]). Java: `returnCode()`. */
    @get:JvmName("returnCode")
    public val returnCode: Int get() = exitStatus.returnCode

    /** [stdout] decoded (malformed input replaced), or null when not captured. */
    @JvmOverloads
    public fun stdoutText(charset: Charset = Charsets.UTF_8): String? = stdout?.toString(charset)

    /** [stderr] decoded (malformed input replaced), or null when not captured. */
    @JvmOverloads
    public fun stderrText(charset: Charset = Charsets.UTF_8): String? = stderr?.toString(charset)

    /** Throws [CalledProcessError], with the output, if [returnCode] is not 0 (Python's `check_returncode`). */
    @Throws(CalledProcessError::class)
    public fun checkReturnCode(): CompletedProcess = apply {
        if (returnCode != 0) throw CalledProcessError(returnCode, command, stdout, stderr)
    }

    /** The command and how it ended, for logs; not the output. */
    override fun toString(): String = "CompletedProcess(command=$command, $exitStatus)"
}
