package dev.prefork

import dev.prefork.reaper.Background
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import java.io.IOException
import java.util.concurrent.CompletableFuture

/**
 * Running children joined as the shell's `a | b | c`: each one's stdout is a kernel pipe to the
 * next one's stdin, so no byte between them passes through this JVM. Start one with [builder].
 *
 * [stdin] is the first member's and [stdout] the last one's (non-null when their builders
 * say [Redirect.STREAM]); each member's stderr is as its own builder says, and is that
 * member's [Subprocess.stderr]. [returnCodes] is bash's `PIPESTATUS`; [returnCode] is bash's
 * `$?`: the last member's, or with `pipefail(true)` the last non-zero one.
 *
 * The members are one: cancelling the scope of a `start()`, cancelling [waitForExit], or
 * [close] terminates them all (SIGTERM, then SIGKILL after each member's `terminateTimeout`),
 * and [close] waits until every one is reaped and closes every pipe.
 */
public class Pipeline internal constructor(
    /** The members, first to last, each a [Subprocess] of its own (pid, exit status, stderr). */
    @get:JvmName("members") public val members: List<Subprocess>,
    private val pipefail: Boolean,
) : AutoCloseable {
    /** The first member's stdin, when its builder says [Redirect.STREAM]. */
    @get:JvmName("stdin")
    public val stdin: PipeWriter? get() = members.first().stdin

    /** The last member's stdout, when its builder says [Redirect.STREAM]. */
    @get:JvmName("stdout")
    public val stdout: PipeReader? get() = members.last().stdout

    /** Each member's return code, first to last (bash's `PIPESTATUS`); null for one not reaped yet. */
    @get:JvmName("returnCodes")
    public val returnCodes: List<Int?> get() = members.map { it.returnCode }

    /** The pipeline's return code (see [Pipeline]) once every member was reaped, else null. */
    @get:JvmName("returnCode")
    public val returnCode: Int? get() = if (members.all { it.returnCode != null }) deciding().returnCode else null

    /** The members' commands joined by `|`: how a timeout names the pipeline. */
    internal val command: List<String> get() = joined(members.map { it.command })

    /** The member whose return code is the pipeline's: the last, or with pipefail the last that failed. */
    private fun deciding(): Subprocess =
        if (pipefail) members.lastOrNull { it.returnCode != 0 } ?: members.last() else members.last()

    private fun result(raiseError: Boolean): Int {
        val member = deciding()
        val code = checkNotNull(member.returnCode)
        if (raiseError && code != 0) throw CalledProcessError(code, member.command)
        return code
    }

    /**
     * Suspends until every member exits and returns the pipeline's return code; with
     * [raiseError], a non-zero one throws [CalledProcessError] naming the member it came from.
     * Cancelling the caller terminates every member and rethrows the cancellation.
     */
    @JvmSynthetic
    public suspend fun waitForExit(raiseError: Boolean = true): Int {
        try {
            for (member in members) member.waitForExit(raiseError = false)
        } catch (e: CancellationException) {
            Background.launch { terminateAndReap() }
            throw e
        }
        return result(raiseError)
    }

    /** Blocks until every member exits; see the suspending [waitForExit]. Interrupting the thread terminates them all. */
    @JvmName("waitForExit")
    @JvmOverloads
    @Throws(CalledProcessError::class, InterruptedException::class)
    public fun waitForExitBlocking(raiseError: Boolean = true): Int {
        try {
            for (member in members) member.waitForExitBlocking(raiseError = false)
        } catch (interrupted: InterruptedException) {
            Background.launch { terminateAndReap() }
            throw interrupted
        }
        return result(raiseError)
    }

    /**
     * Blocks until every member exits, at most [timeout] in all; see the suspending [waitForExit].
     * A timeout terminates every member (SIGTERM, SIGKILL after the grace period) and throws
     * [SubprocessTimeoutException] naming the pipeline (the members' commands joined by `|`)
     * and [timeout]. Interrupting the thread terminates them all too.
     */
    @JvmName("waitForExit")
    @JvmOverloads
    @Throws(CalledProcessError::class, SubprocessTimeoutException::class, InterruptedException::class)
    public fun waitForExitBlocking(timeout: java.time.Duration, raiseError: Boolean = true): Int {
        require(!timeout.isNegative) { "timeout < 0: $timeout" }
        val deadline = System.nanoTime() + timeout.nanosOrMax()
        try {
            for (member in members) {
                member.waitForExitBlocking(java.time.Duration.ofNanos(maxOf(0L, deadline - System.nanoTime())), raiseError = false)
            }
        } catch (timedOut: SubprocessTimeoutException) {
            Background.launch { terminateAndReap() }
            throw SubprocessTimeoutException(command, timeout)
        } catch (interrupted: InterruptedException) {
            Background.launch { terminateAndReap() }
            throw interrupted
        }
        return result(raiseError)
    }

    /**
     * Completes with the pipeline's return code when every member exited; dependent stages run
     * on a prefork background thread. Cancelling the future touches no member.
     */
    public fun onExit(): CompletableFuture<Int> =
        CompletableFuture.allOf(*members.map { it.onExit() }.toTypedArray()).thenApply { result(raiseError = false) }

    /** Sends [signal] to every member still running (to its process group if it has one of its own). */
    @Throws(IOException::class)
    public fun signal(signal: Int) {
        var failure: IOException? = null
        for (member in members) {
            try {
                member.signal(signal)
            } catch (e: IOException) {
                failure?.addSuppressed(e) ?: run { failure = e }
            }
        }
        failure?.let { throw it }
    }

    /** SIGTERM to every member. */
    @Throws(IOException::class)
    public fun terminate(): Unit = signal(dev.prefork.posix.Linux.SIGTERM)

    /** SIGKILL to every member. */
    @Throws(IOException::class)
    public fun kill(): Unit = signal(dev.prefork.posix.Linux.SIGKILL)

    /**
     * Terminates every member that still runs (SIGKILL after its grace period), waits until all
     * are reaped, and closes every pipe. An interrupted thread stops waiting: the members then
     * get SIGKILL, and the interrupt status is kept.
     */
    override fun close() {
        try {
            runBlocking { terminateAndReap() }
        } catch (interrupted: InterruptedException) {
            Thread.currentThread().interrupt()
            runCatching { kill() }
        }
        for (member in members) member.close()
    }

    internal suspend fun terminateAndReap() {
        withContext(NonCancellable) {
            // Every SIGTERM in one pass, as a shell's kill of the job would: the members' own escalations then run side by side.
            for (member in members) runCatching { member.terminate() }
            coroutineScope { for (member in members) launch { member.terminateAndReap() } }
        }
    }

    override fun toString(): String = "Pipeline(${members.joinToString(" | ") { "${it.command} (pid ${it.pid}, ${it.exitStatus ?: "running"})" }})"

    public companion object {
        /**
         * A pipeline of [members], first to last: each a [Subprocess.builder] that says the
         * member's command, environment, directory, stderr and grace period; the first one's
         * stdin and the last one's stdout as well. The sides that are pipes between members must
         * not be redirected.
         */
        @JvmStatic
        public fun builder(vararg members: SubprocessBuilder): PipelineBuilder = PipelineBuilder(members.toList())

        /** A pipeline of [members], first to last; see the vararg form. */
        @JvmStatic
        public fun builder(members: List<SubprocessBuilder>): PipelineBuilder = PipelineBuilder(members.toList())

        internal fun joined(commands: List<List<String>>): List<String> {
            val all = ArrayList<String>()
            for ((i, command) in commands.withIndex()) {
                if (i > 0) all.add("|")
                all.addAll(command)
            }
            return all
        }
    }
}
