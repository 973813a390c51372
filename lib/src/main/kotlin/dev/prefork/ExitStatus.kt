package dev.prefork

import dev.prefork.posix.WaitResult
import java.time.Duration

/**
 * How a child ended, exactly as `wait4` reported it: an exit code or a signal (never both),
 * whether it dumped core, and what it used (CPU time, peak resident memory).
 */
public class ExitStatus internal constructor(result: WaitResult) {
    /** The exit code, or null when a signal killed the process. */
    @get:JvmName("exitCode")
    public val exitCode: Int? = if (result.signaled) null else result.exitCode

    /** The signal that killed the process, or null when it exited. */
    @get:JvmName("signal")
    public val signal: Int? = if (result.signaled) result.termSignal else null

    /** True when the signal that killed the process also made it dump core. */
    @get:JvmName("coreDumped")
    public val coreDumped: Boolean = result.coreDumped

    /** Tornado's return code: [exitCode], or `-signal`. */
    @get:JvmName("returnCode")
    public val returnCode: Int = result.returnCode

    /** CPU time the child spent in user mode (`ru_utime`), its own and its reaped children's. */
    @get:JvmName("userCpuTime")
    public val userCpuTime: Duration = Duration.ofNanos(result.userMicros * 1000)

    /** CPU time the kernel spent for the child (`ru_stime`), its own and its reaped children's. */
    @get:JvmName("systemCpuTime")
    public val systemCpuTime: Duration = Duration.ofNanos(result.systemMicros * 1000)

    /**
     * Peak resident set size (`ru_maxrss`), in bytes. On Linux a child started with
     * `posix_spawn` runs in this JVM's memory until its `exec`, and the kernel counts that
     * memory's high-water mark into the child's: the value is at least this JVM's own peak
     * at spawn time, so only a figure above that describes the child.
     */
    @get:JvmName("maxRssBytes")
    public val maxRssBytes: Long = result.maxRssKiB * 1024

    /** `exited with status N` or `killed by signal N`, as a log line would say it. */
    override fun toString(): String = when (signal) {
        null -> "exited with status $exitCode"
        else -> "killed by signal $signal" + if (coreDumped) " (core dumped)" else ""
    }
}
