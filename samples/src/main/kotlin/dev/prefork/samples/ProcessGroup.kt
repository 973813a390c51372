package dev.prefork.samples

import dev.prefork.Redirect
import dev.prefork.Subprocess
import kotlinx.coroutines.delay
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.TimeSource

/**
 * The process group of a job started under `setsid`, whose id is the job's pid.
 *
 * prefork signals only the process it started, and a shell's own children outlive it when it
 * is killed. So each job runs in its own session, and stopping a job signals the whole group
 * with the shell's `kill -SIG -PGID` (prefork has no call for it). A group id cannot be reused
 * while any member is alive, so signalling it after the shell was reaped is safe.
 */
class ProcessGroup(private val id: Long) {
    /** SIGTERM to every member; SIGKILL to whatever is left after [grace]. Returns when the group is empty. */
    suspend fun terminate(grace: Duration) {
        if (!signal("TERM")) return
        val deadline = TimeSource.Monotonic.markNow() + grace
        while (deadline.hasNotPassedNow()) {
            delay(50.milliseconds)
            if (!signal("0")) return
        }
        signal("KILL")
    }

    /** Sends [name] (`TERM`, `KILL`, `0` to probe); false when the group has no member left. */
    private suspend fun signal(name: String): Boolean =
        Subprocess.builder("sh", "-c", "kill -$name -$id 2>/dev/null")
            .stdin(Redirect.DEVNULL)
            .startDetached()
            .waitForExit(raiseError = false) == 0
}
