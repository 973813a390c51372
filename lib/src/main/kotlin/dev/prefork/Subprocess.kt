package dev.prefork

import dev.prefork.io.Terminal
import dev.prefork.posix.Linux
import dev.prefork.posix.Pty
import dev.prefork.posix.Wait
import dev.prefork.reaper.Background
import dev.prefork.reaper.Reactor
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Deferred
import kotlinx.coroutines.Job
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.asExecutor
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.future.asCompletableFuture
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeoutOrNull
import java.io.IOException
import java.util.concurrent.CompletableFuture
import java.util.concurrent.atomic.AtomicReference

/**
 * A running child process, Tornado's `Subprocess`: pipes as coroutine channels, an exit that
 * is awaited without a thread per child, and exact exit status with resource usage.
 *
 * Start one with [builder]. From a coroutine, `start()` ties the child to the caller's
 * [Job]: the scope does not complete before the child exits, and cancelling it terminates
 * the child (SIGTERM, then SIGKILL after the builder's `terminateTimeout`). `startDetached()`
 * (Java: `start()`) ties it to nothing; cancelling a [waitForExit] still terminates it.
 *
 * Closing a Subprocess ([close], or try-with-resources in Java) terminates the child if it
 * still runs, waits until it is reaped, and closes every pipe.
 */
public class Subprocess private constructor(
    /** The program and its arguments, as given to the builder. Java: `command()`. */
    @get:JvmName("command") public val command: List<String>,
    pid: Int,
    /** The child's stdin when it was [Redirect.STREAM], else null. Java: `stdin()`. */
    @get:JvmName("stdin") public val stdin: PipeWriter?,
    /** The child's stdout when it was [Redirect.STREAM], else null. Java: `stdout()`. */
    @get:JvmName("stdout") public val stdout: PipeReader?,
    /** The child's stderr when it was [Redirect.STREAM], else null. Java: `stderr()`. */
    @get:JvmName("stderr") public val stderr: PipeReader?,
    private val terminateTimeout: java.time.Duration,
    private val processGroup: Boolean = false,
    /** The parent's ends of the pipes given as fd 3, 4, ... ([SubprocessBuilder.readPipe]), in fd order. */
    internal val extraReaders: List<PipeReader> = emptyList(),
    /** The streams that [Redirect.toLogger] reads; closed with the rest. */
    private val logReaders: List<PipeReader> = emptyList(),
    logging: Job? = null,
    private val terminal: Terminal? = null,
) : AutoCloseable {
    /** The child's process id. It stays this object's after the exit, but the kernel may give it to another process once the child is reaped. Java: `pid()`. */
    @get:JvmName("pid")
    public val pid: Long = pid.toLong()

    private val lock = Any()
    private val exit = CompletableDeferred<ExitStatus>()

    /** The exit, then the end of each [Redirect.toLogger] stream: what [waitForExit], [onExit] and the exit callback wait for. */
    private val finished: Deferred<ExitStatus> = if (logging == null) exit else CompletableDeferred<ExitStatus>().also { done ->
        exit.invokeOnCompletion { cause ->
            if (cause != null) done.completeExceptionally(cause) else logging.invokeOnCompletion { done.complete(checkNotNull(status)) }
        }
    }
    private val callback = AtomicReference<ExitCallback?>()

    @Volatile private var status: ExitStatus? = null

    /** The reactor's watch of the exit, for a blocking waiter to wait on its own thread; null where exits are polled. */
    @Volatile internal var exitWatch: Reactor.ExitWatch? = null

    /** Set under [lock] once wait4 reported the child (or could not): from then on its pid is not ours to signal. */
    private var reaped = false

    /** The return code once the child was reaped, else null; negative: killed by that signal. */
    @get:JvmName("returnCode")
    public val returnCode: Int? get() = status?.returnCode

    /** The full exit status (signal, core dump, CPU time, peak RSS) once the child was reaped. */
    @get:JvmName("exitStatus")
    public val exitStatus: ExitStatus? get() = status

    /**
     * Runs on the reactor thread, once when a waiter starts waiting, and on a blocking waiter's
     * thread as it waits for the exit there: reap under [lock], so no signal can reach a recycled pid.
     * If something else in this JVM reaped the child first (a `waitpid(-1)`, or SIGCHLD set to
     * SIG_IGN), its status is lost: waiters get that [java.io.IOException] instead of a code.
     */
    internal fun tryReap(): Boolean {
        val ended = synchronized(lock) {
            if (reaped) return true
            val result = try {
                Wait.reap(pid.toInt()) ?: return false
            } catch (e: java.io.IOException) {
                reaped = true
                exit.completeExceptionally(e)
                return true
            }
            reaped = true
            ExitStatus(result).also { status = it }
        }
        // Nobody reads stdin any more: close it (before waiters resume), or its pipe would stay open as long as this object.
        stdin?.closeAfterExit()
        terminal?.close()
        exit.complete(ended)
        return true
    }

    /**
     * A child that exited already (its pipes read to their end, say) is reaped on the waiter's
     * thread: the reactor, which reaps it too once its pidfd says so, would wake the waiter a
     * moment later otherwise.
     */
    private fun reapIfExited() {
        if (!exit.isCompleted) tryReap()
    }

    /**
     * Suspends until the child exits and returns its return code; with [raiseError], a
     * non-zero code throws [CalledProcessError] instead. Cancelling the caller terminates the
     * child (SIGTERM, SIGKILL after the grace period) and rethrows the cancellation.
     *
     * A stream redirected with [Redirect.toLogger] is waited for too: this returns once its last
     * line was logged. That is at the child's exit, unless the child passed the stream on to a
     * process that still runs (`sh -c 'server &'`): then until that one closes it as well, as
     * `run()` waits for captured output.
     */
    @JvmSynthetic
    public suspend fun waitForExit(raiseError: Boolean = true): Int {
        reapIfExited()
        val ended = try {
            finished.await()
        } catch (e: CancellationException) {
            Background.launch { terminateAndReap() }
            throw e
        }
        if (raiseError && ended.returnCode != 0) throw CalledProcessError(ended.returnCode, command)
        return ended.returnCode
    }

    /** Blocks until the child exits; see the suspending [waitForExit]. Interrupting the thread terminates the child. */
    @JvmName("waitForExit")
    @JvmOverloads
    @Throws(CalledProcessError::class, InterruptedException::class)
    public fun waitForExitBlocking(raiseError: Boolean = true): Int {
        val ended = awaitExitBlocking()
        if (raiseError && ended.returnCode != 0) throw CalledProcessError(ended.returnCode, command)
        return ended.returnCode
    }

    /**
     * Blocks until the child exits, at most [timeout]; see the suspending [waitForExit]. As a
     * Kotlin `withTimeout(timeout) { waitForExit() }` does, a timeout terminates the child
     * (SIGTERM, SIGKILL after the grace period; [onExit] tells when it is reaped) and throws
     * [SubprocessTimeoutException] naming the command and [timeout]. Interrupting the thread
     * terminates the child too.
     */
    @JvmName("waitForExit")
    @JvmOverloads
    @Throws(CalledProcessError::class, SubprocessTimeoutException::class, InterruptedException::class)
    public fun waitForExitBlocking(timeout: java.time.Duration, raiseError: Boolean = true): Int {
        require(!timeout.isNegative) { "timeout < 0: $timeout" }
        val ended = awaitExitBlocking(timeout)
        if (raiseError && ended.returnCode != 0) throw CalledProcessError(ended.returnCode, command)
        return ended.returnCode
    }

    /**
     * The exit status, on this thread: first a wait for the exit itself (up to 10 ms), then a
     * latch on it; no coroutine event loop (the first spawn of a command-line tool would pay for
     * one in start-up time).
     */
    private fun awaitExitBlocking(timeout: java.time.Duration? = null): ExitStatus {
        val started = System.nanoTime()
        reapIfExited()
        // A short-lived child is waited for right here, woken by its exit itself; a longer wait
        // goes on on the latch, which an interrupt ends at once (the wait here does not: it is seen
        // within its 10 ms). A virtual thread parks on the latch at once: a poll would pin its carrier.
        val watch = exitWatch
        val thread = Thread.currentThread()
        if (watch != null && !exit.isCompleted && !thread.isInterrupted && thread.javaClass.name != VIRTUAL_THREAD) {
            watch.awaitHere(directWaitMillis(timeout?.nanosOrMax()))
        }
        val latch = java.util.concurrent.CountDownLatch(1)
        var failure: Throwable? = null
        // Runs at once if the child was reaped already; else on the thread that reaps it.
        val handle = finished.invokeOnCompletion { cause ->
            failure = cause
            latch.countDown()
        }
        try {
            if (timeout == null) {
                latch.await()
            } else if (!latch.await(timeout.nanosOrMax() - (System.nanoTime() - started), java.util.concurrent.TimeUnit.NANOSECONDS)) {
                handle.dispose()
                Background.launch { terminateAndReap() }
                throw SubprocessTimeoutException(command, timeout)
            }
        } catch (interrupted: InterruptedException) {
            handle.dispose()
            Background.launch { terminateAndReap() }
            throw interrupted
        }
        failure?.let { throw it }
        return checkNotNull(status)
    }

    /**
     * stdout's and stderr's lines as they arrive, each tagged with its stream; see [PipeReader.lines]
     * for how lines are split and decoded. Either stream may be [Redirect.STREAM], or both; the
     * flow completes when each of them ended (the child, and whatever it passed them on to, closed
     * them). Each stream's own order is kept; across the two, lines come in the order their reads
     * complete, which is the order written when the child flushes its writes and pauses between
     * the streams. Cold: collect it once, and read those streams in no other way meanwhile.
     *
     * Cancelling the collector stops the reading, nothing else: the child keeps running (and
     * blocks once a pipe it writes to is full) until it exits, or [close] or a signal ends it;
     * lines already read but not yet collected are dropped.
     *
     * @throws IllegalStateException if neither stdout nor stderr is [Redirect.STREAM].
     */
    public fun outputLines(): Flow<OutputLine> = mergeLines(command, stdout, stderr)

    /**
     * Passes each of [outputLines] to [action], on this thread, until both streams ended: the
     * blocking form for Java. An exception from [action] stops the reading and is thrown here;
     * interrupting the thread stops it with [InterruptedException]. Neither touches the child.
     *
     * @throws IllegalStateException if neither stdout nor stderr is [Redirect.STREAM].
     */
    @Throws(IOException::class, InterruptedException::class)
    public fun forEachOutputLine(action: java.util.function.Consumer<in OutputLine>) {
        val lines = outputLines()
        runBlocking { lines.collect { action.accept(it) } }
    }

    /**
     * Registers [callback] to run exactly once with the return code when the child exits (and,
     * as [waitForExit], its [Redirect.toLogger] streams ended), on a
     * background thread of prefork's (immediately, if it already has). Only one callback may be
     * set; [waitForExit] and [onExit] never replace it.
     */
    public fun setExitCallback(callback: ExitCallback) {
        check(this.callback.compareAndSet(null, callback)) { "exit callback already set for pid $pid" }
        Background.launch { callback.onExit(finished.await().returnCode) }
    }

    /**
     * Completes with the return code when the child exits (and, as [waitForExit], its
     * [Redirect.toLogger] streams ended). Dependent stages run on a prefork
     * background thread, never on the reactor thread, so they may block or start processes.
     * Cancelling the future does not touch the child.
     */
    public fun onExit(): CompletableFuture<Int> =
        finished.asCompletableFuture().thenApplyAsync({ it.returnCode }, Dispatchers.IO.asExecutor())

    /**
     * Sends [signal] to the child (to its whole process group if it was started with
     * `newProcessGroup()`); a no-op once the child has been reaped, when its pid may already
     * be someone else's.
     */
    @Throws(IOException::class)
    public fun signal(signal: Int) {
        require(signal in 0..64) { "signal out of range: $signal" }
        synchronized(lock) {
            if (!reaped) Wait.kill(if (processGroup) -pid.toInt() else pid.toInt(), signal)
        }
    }

    /**
     * Sets the window size of the child's terminal (`SubprocessBuilder.pty`) to [columns] by
     * [rows]; the terminal's foreground process group (the child, unless it started another
     * one, as a shell does for its jobs) gets SIGWINCH. A no-op once the child has been reaped.
     *
     * @throws IllegalStateException if the child was not started with `pty()`.
     */
    @Throws(IOException::class)
    public fun resize(columns: Int, rows: Int) {
        require(columns in 1..Pty.MAX_SIZE) { "columns not in 1..${Pty.MAX_SIZE}: $columns" }
        require(rows in 1..Pty.MAX_SIZE) { "rows not in 1..${Pty.MAX_SIZE}: $rows" }
        checkNotNull(terminal) { "resize: $command (pid $pid) was not started with pty()" }.resize(columns, rows)
    }

    /** SIGTERM. */
    @Throws(IOException::class)
    public fun terminate(): Unit = signal(Linux.SIGTERM)

    /** SIGKILL. */
    @Throws(IOException::class)
    public fun kill(): Unit = signal(Linux.SIGKILL)

    /**
     * Terminates the child if it still runs (SIGKILL after the grace period), waits for it, and
     * closes the pipes. An interrupted thread stops waiting: the child then gets SIGKILL, and
     * the interrupt status is kept.
     */
    override fun close() {
        try {
            if (!exit.isCompleted) runBlocking { terminateAndReap() }
        } catch (interrupted: InterruptedException) {
            Thread.currentThread().interrupt()
            runCatching { kill() }
        }
        stdin?.close()
        stdout?.close()
        stderr?.close()
        for (reader in extraReaders) reader.close()
        for (reader in logReaders) reader.close()
        terminal?.close()
    }

    internal suspend fun terminateAndReap() {
        withContext(NonCancellable) {
            if (exit.isCompleted) return@withContext
            // EPERM (a child that became setuid) must not stop the escalation or the wait.
            runCatching { terminate() }
            if (withTimeoutOrNull(terminateTimeout.toMillis()) { exit.join() } == null) {
                runCatching { kill() }
                exit.join()
            }
        }
    }

    /** Keeps the scope of [caller] open until the child exits, and terminates the child if that scope is cancelled. */
    internal fun attachTo(caller: kotlin.coroutines.CoroutineContext) {
        if (caller[Job] == null) return
        CoroutineScope(caller).launch(start = CoroutineStart.UNDISPATCHED) {
            try {
                exit.await()
            } catch (e: CancellationException) {
                terminateAndReap()
                throw e
            }
        }
    }

    /** The pid, the command and whether it still runs, for logs. */
    override fun toString(): String = "Subprocess(pid=$pid, command=$command, ${status ?: "running"})"

    /** Where Subprocesses come from: [builder] (Java: `Subprocess.builder(...)`, a static method). */
    public companion object {
        /** A builder for [command]: the program (looked up on PATH) and its arguments. */
        @JvmStatic
        public fun builder(vararg command: String): SubprocessBuilder = SubprocessBuilder(copyOf(command.size) { command[it] })

        /** A builder for [command]: the program (looked up on PATH) and its arguments, copied. */
        @JvmStatic
        public fun builder(command: List<String>): SubprocessBuilder = SubprocessBuilder(copyOf(command.size) { command[it] })

        /*
         * The first spawn of a JVM is a command-line tool's start-up: the spawn path uses `java.util`
         * and `String` members only, not Kotlin's collection and string extensions, whose facade
         * classes (a dozen each, the array one a megabyte) would load and be verified first.
         */
        private inline fun copyOf(size: Int, element: (Int) -> String): List<String> {
            val copy = ArrayList<String>(size)
            for (i in 0 until size) copy.add(element(i))
            return copy
        }

        internal val reactor: Reactor get() = Reactor.shared

        /** How long a blocking waiter waits for the exit on its own thread before it waits on a latch. */
        private const val DIRECT_WAIT_MILLIS = 10

        /** Virtual threads' class (JDK 21+), told by name: `Thread.isVirtual` is not in JDK 17's API. */
        private const val VIRTUAL_THREAD = "java.lang.VirtualThread"

        /** The wait on the waiter's own thread for a wait of at most [limitNanos] (null: no limit), in whole milliseconds. */
        internal fun directWaitMillis(limitNanos: Long?): Int =
            if (limitNanos == null) DIRECT_WAIT_MILLIS else minOf(DIRECT_WAIT_MILLIS.toLong(), maxOf(0L, limitNanos) / 1_000_000).toInt()

        /** Not a public constructor: Java could otherwise make a Subprocess for any pid and signal it. */
        @JvmSynthetic
        internal fun create(
            command: List<String>,
            pid: Int,
            stdin: PipeWriter?,
            stdout: PipeReader?,
            stderr: PipeReader?,
            terminateTimeout: java.time.Duration,
            processGroup: Boolean,
            extraReaders: List<PipeReader>,
            logReaders: List<PipeReader>,
            logging: Job?,
            terminal: Terminal? = null,
        ): Subprocess = Subprocess(command, pid, stdin, stdout, stderr, terminateTimeout, processGroup, extraReaders, logReaders, logging, terminal)
    }
}
