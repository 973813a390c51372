package dev.prefork

import dev.prefork.posix.Fds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.withContext
import java.io.IOException
import java.time.Duration

/**
 * Configures and starts a [Pipeline], or [run]s one to its end and captures its output. Each
 * member is a [SubprocessBuilder] as for a lone child, but for the sides that are pipes between
 * members (every stdin but the first, every stdout but the last), which must be left unset,
 * and for [run]'s options, which are the pipeline's own here.
 */
public class PipelineBuilder internal constructor(private val members: List<SubprocessBuilder>) {
    private var pipefail = false
    private var input: ByteArray? = null
    private var timeout: Duration? = null
    private var check = false
    private var maxOutput = MAX_ARRAY

    init {
        require(members.isNotEmpty()) { "pipeline has no members" }
    }

    /**
     * bash's `set -o pipefail`: the pipeline's return code is the last non-zero one of its
     * members (0 if all exited 0) instead of the last member's. A member killed by SIGPIPE
     * because a later one stopped reading (`yes | head -1`) then fails it too. Default false,
     * as in bash.
     */
    public fun pipefail(pipefail: Boolean): PipelineBuilder = apply { this.pipefail = pipefail }

    /**
     * For [run]: [bytes] are written to the first member's stdin, a pipe then (a redirect of that
     * stdin other than [Redirect.STREAM] is refused), as `SubprocessBuilder.input` does.
     */
    public fun input(bytes: ByteArray): PipelineBuilder = apply { input = bytes }

    /**
     * For [run]: past [timeout] every member is terminated (SIGTERM, SIGKILL after its
     * `terminateTimeout`) and reaped, and the run throws [SubprocessTimeoutException] naming the
     * pipeline, with the last member's stdout captured until then (its stderr is null: the
     * members' are several). Default: none.
     */
    public fun timeout(timeout: Duration): PipelineBuilder = apply {
        require(!timeout.isNegative) { "timeout < 0: $timeout" }
        this.timeout = timeout
    }

    /**
     * For [run]: a non-zero return code of the pipeline (see [pipefail]) throws
     * [CalledProcessError] naming the member it came from, with the pipeline's captured stdout
     * and that member's captured stderr. Default false.
     */
    public fun check(check: Boolean): PipelineBuilder = apply { this.check = check }

    /**
     * For [run]: the most bytes captured from the last member's stdout, and from each member's
     * stderr. Past it, every member is terminated and reaped, and the run throws
     * [SubprocessOutputLimitException] naming the member and stream. Default: the largest array
     * the JVM makes.
     */
    public fun maxOutput(bytes: Int): PipelineBuilder = apply {
        require(bytes in 0..MAX_ARRAY) { "maxOutput not in 0..$MAX_ARRAY: $bytes" }
        maxOutput = bytes
    }

    /**
     * Starts every member, owned by the calling coroutine's scope: the scope waits for them all
     * to exit, and cancelling it terminates them all. The spawns run on [Dispatchers.IO].
     *
     * @throws IOException as [startDetached] does.
     */
    @JvmSynthetic
    @Throws(IOException::class)
    public suspend fun start(): Pipeline {
        val caller = currentCoroutineContext()
        return withContext(NonCancellable + Dispatchers.IO) {
            startDetached().also { pipeline -> for (member in pipeline.members) member.attachTo(caller) }
        }
    }

    /**
     * Starts every member, first to last, owned by no scope. When one cannot be started, the
     * [IOException] is that member's (naming its program and errno, as `SubprocessBuilder.start`
     * does), thrown once the members started before it were killed (SIGKILL) and reaped and
     * every pipe was closed.
     */
    @JvmName("start")
    @Throws(IOException::class)
    public fun startDetached(): Pipeline = Pipeline(spawnAll(capture = false, firstStdin = null), pipefail)

    /**
     * Runs the pipeline to its end, as `SubprocessBuilder.run()` runs a child: [input] is
     * written to the first member while the last one's stdout and every member's stderr are
     * captured (unless their builders redirect them: those come back null). Every member is
     * reaped before this returns or throws; on [timeout], [maxOutput] or the caller's
     * cancellation they are terminated first. With [check], a non-zero return code throws
     * [CalledProcessError]. A member that cannot start is the [IOException] of [startDetached].
     */
    @JvmSynthetic
    @Throws(IOException::class)
    public suspend fun run(): CompletedPipeline {
        val given = members[0].stdinRedirect
        require(input == null || given == null || given == Redirect.STREAM) {
            "input given, but stdin of pipeline member 0 (${members[0].commandLine}) is $given"
        }
        checkMembers()
        val command = Pipeline.joined(members.map { it.commandLine })
        val completed = Run(command, input, timeout, maxOutput).run {
            spawnAll(capture = true, firstStdin = if (input != null) Redirect.STREAM else null)
        }
        val result = CompletedPipeline(completed, pipefail)
        return if (check) result.checkReturnCode() else result
    }

    /** Blocks until the pipeline was run to its end; see the suspending [run]. Interrupting the thread terminates every member. */
    @JvmName("run")
    @Throws(IOException::class, InterruptedException::class)
    public fun runBlocking(): CompletedPipeline = kotlinx.coroutines.runBlocking { run() }

    private fun checkMembers() {
        for (i in members.indices) members[i].checkPipelineMember(i, members.size)
    }

    /** Spawns the members, each one's stdout a pipe to the next one's stdin; on a failure, ends the ones started. */
    private fun spawnAll(capture: Boolean, firstStdin: Redirect?): List<Subprocess> {
        checkMembers()
        val started = ArrayList<Subprocess>(members.size)
        // The read end of the pipe from the member spawned last: the next member's stdin.
        var readEnd = -1
        try {
            for (i in members.indices) {
                val member = members[i]
                val pipe = if (i < members.size - 1) Fds.pipe() else null
                try {
                    val stdin = if (i == 0 && firstStdin != null) firstStdin else member.stdinRedirect
                    started += member.startInPipeline(if (i == 0) null else readEnd, pipe?.get(1), capture, stdin)
                } finally {
                    // The children hold their ends now (or never will): the parent keeps only the next member's.
                    Fds.closeQuietly(readEnd)
                    pipe?.let { Fds.closeQuietly(it[1]) }
                    readEnd = pipe?.get(0) ?: -1
                }
            }
            return started
        } catch (t: Throwable) {
            Fds.closeQuietly(readEnd)
            for (process in started) runCatching { process.kill() }
            for (process in started) process.close()
            throw t
        }
    }
}
