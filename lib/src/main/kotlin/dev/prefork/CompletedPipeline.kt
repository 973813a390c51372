package dev.prefork

import java.nio.charset.Charset

/**
 * A [Pipeline] that `run()` ran to its end: each member's [CompletedProcess] (its command, exit
 * status and captured stderr; only the last one has a stdout), and the pipeline's [returnCode].
 */
public class CompletedPipeline internal constructor(
    /** The members, first to last. */
    @get:JvmName("members") public val members: List<CompletedProcess>,
    private val pipefail: Boolean,
) {
    /** Each member's return code, first to last: bash's `PIPESTATUS`. */
    @get:JvmName("returnCodes")
    public val returnCodes: List<Int> get() = members.map { it.returnCode }

    /** The member whose return code is the pipeline's: the last one, or with pipefail the last one that failed. */
    private val deciding: CompletedProcess =
        if (pipefail) members.lastOrNull { it.returnCode != 0 } ?: members.last() else members.last()

    /** bash's `$?`: the last member's return code, or with `pipefail(true)` the last non-zero one. */
    @get:JvmName("returnCode")
    public val returnCode: Int get() = deciding.returnCode

    /** The last member's stdout, or null when not captured. */
    @get:JvmName("stdout")
    public val stdout: ByteArray? get() = members.last().stdout

    /** [stdout] decoded (malformed input replaced), or null when not captured. */
    @JvmOverloads
    public fun stdoutText(charset: Charset = Charsets.UTF_8): String? = stdout?.toString(charset)

    /**
     * Throws [CalledProcessError] if [returnCode] is not 0: with the code and command of the
     * member it came from, the pipeline's [stdout] and that member's stderr.
     */
    @Throws(CalledProcessError::class)
    public fun checkReturnCode(): CompletedPipeline = apply {
        if (returnCode != 0) throw CalledProcessError(returnCode, deciding.command, stdout, deciding.stderr)
    }

    override fun toString(): String = "CompletedPipeline(returnCodes=$returnCodes, ${members.joinToString(" | ") { it.command.toString() }})"
}
