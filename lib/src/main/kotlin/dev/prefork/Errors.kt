package dev.prefork

import java.io.IOException

/**
 * A child ended with a non-zero [returnCode] (negative: killed by that signal) and the
 * caller asked for an error. Thrown by `waitForExit()` as Python's `subprocess` does.
 */
public class CalledProcessError(
    @get:JvmName("returnCode") public val returnCode: Int,
    @get:JvmName("command") public val command: List<String>,
) : IOException(
    if (returnCode < 0) {
        "Command $command died with signal ${-returnCode}"
    } else {
        "Command $command returned non-zero exit status $returnCode"
    },
)

/** Called once with a child's return code when it exits; see [Subprocess.setExitCallback]. */
public fun interface ExitCallback {
    public fun onExit(returnCode: Int)
}

/** The supervisor gave up: workers failed more often than `maxRestarts` allows. Survivors were stopped first. */
public class TooManyRestartsException(message: String = "Too many child restarts, giving up") : RuntimeException(message)
