@file:JvmName("JobRunnerKt")

package dev.prefork.samples

import dev.prefork.ExitStatus
import dev.prefork.Redirect
import dev.prefork.StdStream
import dev.prefork.Subprocess
import dev.prefork.SubprocessBuilder
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Job
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.future.await
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.sync.Semaphore
import kotlinx.coroutines.sync.withPermit
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeoutOrNull
import java.io.IOException
import java.io.PrintStream
import java.time.Duration
import kotlin.system.exitProcess
import kotlin.time.TimeSource

/**
 * A coroutine job runner: runs shell commands with bounded parallelism, streams each job's
 * output as it comes (stdout and stderr in arrival order, from [Subprocess.outputLines]),
 * shows live progress, and ends with a table of exit status, wall time, CPU time and peak RSS.
 *
 * ```
 * java -cp prefork-samples.jar dev.prefork.samples.JobRunnerKt          # the built-in demo jobs
 * java -cp prefork-samples.jar dev.prefork.samples.JobRunnerKt --parallel 2 --timeout 60 'make -C a' 'sleep 1; echo ok'
 * ```
 *
 * On a terminal a status line at the bottom counts the jobs finished, failed, running and
 * waiting while their output scrolls above it; piped or redirected, the output has no escape
 * codes and a plain progress line follows each finished job ([Progress]).
 *
 * Every child is started with the suspending `start()`, so it belongs to the coroutine that
 * runs its job: Ctrl-C or SIGTERM cancels the runner's scope, and cancellation terminates
 * every running child before the JVM goes away.
 */
fun main(args: Array<String>) {
    val options = try {
        Options.parse(args)
    } catch (e: IllegalArgumentException) {
        System.err.println("job-runner: ${e.message}")
        System.err.println(Options.USAGE)
        exitProcess(2)
    }
    if (options.help) {
        println(Options.USAGE)
        return
    }
    val exitCode = runBlocking {
        // The runner is a child of runBlocking, so the shutdown hook can cancel it and then
        // wait until cancellation has terminated and reaped every child.
        val runner = async { JobRunner(options).runAll() }
        val hook = Thread({ stopOnShutdown(runner) }, "job-runner-shutdown")
        Runtime.getRuntime().addShutdownHook(hook)
        try {
            runner.await()
        } catch (e: CancellationException) {
            null // the JVM is shutting down; the hook reports what happened
        } finally {
            runCatching { Runtime.getRuntime().removeShutdownHook(hook) } // fails once shutdown began
        }
    }
    // exitProcess must not run inside runBlocking: the shutdown hook would wait for the runner,
    // which would be waiting for exitProcess.
    if (exitCode != null) exitProcess(exitCode)
}

/** Runs on SIGINT/SIGTERM: cancel the runner, give children their SIGTERM grace, then let the JVM exit. */
private fun stopOnShutdown(runner: Job) {
    if (!runner.isActive) return
    System.err.println("[runner] signal received: cancelling jobs, terminating their processes")
    runner.cancel(CancellationException("job runner interrupted"))
    runBlocking { withTimeoutOrNull(JobRunner.TERMINATE_TIMEOUT.toMillis() + 3_000) { runner.join() } }
}

/** One shell command to run, and the return code the demo expects of it (0 for user-given jobs). */
class JobSpec(val command: String, val expectedReturnCode: Int = 0, val note: String? = null)

/**
 * What a finished (or cancelled) job left behind: [error] says why it could not start; a job
 * that [timedOut] was stopped by the runner, and its [status] tells how it ended then.
 */
class JobResult(
    val id: Int,
    val spec: JobSpec,
    val status: ExitStatus?,
    val wallNanos: Long,
    val error: String?,
    val timedOut: Boolean = false,
) {
    val returnCode: Int? get() = status?.returnCode
    val asExpected: Boolean get() = error == null && !timedOut && returnCode == spec.expectedReturnCode
    val succeeded: Boolean get() = error == null && !timedOut && returnCode == 0
}

class JobRunner(private val options: Options, private val out: PrintStream = System.out) {
    private val semaphore = Semaphore(options.parallel)
    private lateinit var progress: Progress

    /** Runs every job and prints the summary; returns the runner's own exit code. */
    suspend fun runAll(): Int {
        val jobs = options.commands?.map { JobSpec(it) } ?: DEMO_JOBS
        val mode = if (options.mergeStderr) "stderr merged into stdout" else "stderr tagged 'err'"
        val limit = options.timeout?.let { ", each stopped after ${SummaryTable.seconds(it.toNanos())}" } ?: ""
        out.println("[runner] ${plural(jobs.size, "job")}, at most ${options.parallel} at a time, $mode$limit")
        warmUp()
        val live = when (options.progress) {
            ProgressMode.AUTO -> Progress.stdoutIsTerminal()
            ProgressMode.ALWAYS -> true
            ProgressMode.NEVER -> false
        }
        progress = Progress(out, live, jobs.size)
        val results = try {
            coroutineScope {
                // The status line shows a clock: redraw it while jobs run, whether or not they print.
                val ticker = if (live) launch { while (true) { delay(STATUS_REFRESH_MILLIS); progress.redraw() } } else null
                jobs.mapIndexed { index, spec -> async { semaphore.withPermit { runJob(index + 1, spec) } } }.awaitAll()
                    .also { ticker?.cancel() }
            }
        } catch (e: CancellationException) {
            progress.line("[runner] cancelled")
            throw e
        } finally {
            progress.close()
        }
        out.println()
        out.print(SummaryTable.render(results))
        out.println(SummaryTable.RSS_NOTE)
        return verdict(results, demo = options.commands == null)
    }

    /**
     * The first start() in a JVM loads prefork's native layer, about a second during which the
     * child already runs; one throwaway spawn keeps that out of the first job's wall time.
     */
    private suspend fun warmUp() {
        Subprocess.builder("true").stdout(Redirect.STREAM).startDetached().waitForExit(raiseError = false)
    }

    private fun verdict(results: List<JobResult>, demo: Boolean): Int {
        val failed = results.filterNot { it.succeeded }
        if (!demo) {
            if (failed.isEmpty()) {
                out.println("[runner] ${plural(results.size, "job")} succeeded")
                return 0
            }
            out.println("[runner] ${failed.size} of ${results.size} failed: ${failed.joinToString { "job ${it.id}" }}")
            return 1
        }
        for (result in failed.filter { it.asExpected }) {
            out.println("[runner] job ${result.id} ${describe(result.status!!)}: expected, the demo fails it on purpose")
        }
        val surprises = results.filterNot { it.asExpected }
        for (result in surprises) {
            val outcome = result.error ?: ((if (result.timedOut) "timed out, " else "") + describe(result.status!!))
            out.println("[runner] job ${result.id} $outcome: NOT expected (wanted return code ${result.spec.expectedReturnCode})")
        }
        out.println(if (surprises.isEmpty()) "[runner] demo OK: every job ended as expected" else "[runner] demo FAILED")
        return if (surprises.isEmpty()) 0 else 1
    }

    private suspend fun runJob(id: Int, spec: JobSpec): JobResult {
        val tag = "[job $id]"
        progress.jobStarted()
        progress.line("$tag \$ ${spec.command}${spec.note?.let { "   # $it" } ?: ""}")
        val started = TimeSource.Monotonic.markNow()
        val result = coroutineScope {
            val process = try {
                builder(id, spec.command).start()
            } catch (e: IOException) {
                progress.line("$tag could not start: ${e.message}")
                return@coroutineScope JobResult(id, spec, null, started.elapsedNow().inWholeNanoseconds, e.message)
            }
            // The reader runs next to waitForExit: a child that fills a pipe nobody reads never exits.
            val reader = launch {
                process.outputLines().collect { line ->
                    progress.line(if (line.stream == StdStream.STDERR) "[job $id err] ${line.text}" else "$tag ${line.text}")
                }
            }
            val exited = try {
                // A timeout cancels the wait, and a cancelled wait terminates the child's process group.
                withTimeoutOrNull(options.timeout?.toMillis() ?: Long.MAX_VALUE) { process.waitForExit(raiseError = false) }
            } catch (e: CancellationException) {
                // Cancellation sends the job's whole process group SIGTERM (SIGKILL after the
                // grace period), so what the shell started stops too; the scope that started
                // the job ends only when it is gone.
                withContext(NonCancellable) { process.onExit().await() }
                progress.line("$tag cancelled: pid ${process.pid} ${process.exitStatus?.let(::describe)}")
                throw e
            }
            if (exited == null) process.onExit().await()
            val wall = started.elapsedNow().inWholeNanoseconds
            reader.join() // the pipes end soon after the exit; report the exit after the last line
            val status = checkNotNull(process.exitStatus) { "no exit status after waitForExit" }
            val timedOut = exited == null
            val limit = if (timedOut) "timed out (limit ${SummaryTable.seconds(options.timeout!!.toNanos())}): " else ""
            progress.line("$tag $limit${describe(status)} after ${SummaryTable.seconds(wall)}")
            JobResult(id, spec, status, wall, null, timedOut)
        }
        progress.jobFinished(result.succeeded)
        return result
    }

    /** Each job leads a process group of its own, so stopping it stops what its shell started too. */
    private fun builder(id: Int, command: String): SubprocessBuilder = Subprocess.builder("sh", "-c", command)
        .env("JOB_ID", id.toString())
        .newProcessGroup()
        .stdin(Redirect.DEVNULL)
        .stdout(Redirect.STREAM)
        .stderr(if (options.mergeStderr) Redirect.STDOUT else Redirect.STREAM)
        .terminateTimeout(TERMINATE_TIMEOUT)

    companion object {
        val TERMINATE_TIMEOUT: Duration = Duration.ofSeconds(2)
        private const val STATUS_REFRESH_MILLIS = 250L

        /** A few seconds of varied work; job 3 and job 8 fail on purpose. */
        val DEMO_JOBS: List<JobSpec> = listOf(
            JobSpec("for i in 1 2 3; do echo step \$i; sleep 0.2; done"),
            JobSpec("echo 'checking the disk'; echo 'warning: disk 91% full (made up)' >&2; echo 'check done'"),
            JobSpec("echo 'about to fail'; sleep 0.3; exit 3", expectedReturnCode = 3, note = "fails on purpose"),
            JobSpec("seq -f 'line %g of 25' 1 25"),
            JobSpec("ls /"),
            JobSpec("i=0; while [ \$i -lt 300000 ]; do i=\$((i+1)); done; echo counted to \$i", note = "burns CPU"),
            JobSpec("seq 1 500000 | sort -rn | head -n 3", note = "a pipeline: wait4 counts every stage"),
            JobSpec("echo 'sending myself SIGTERM'; kill -TERM \$\$", expectedReturnCode = -15, note = "killed on purpose"),
            JobSpec("sleep 1; echo \"slept 1 s as job \$JOB_ID\""),
        )
    }
}

private fun plural(n: Int, noun: String): String = if (n == 1) "1 $noun" else "$n ${noun}s"

/** "exited with status 3", "killed by signal 15 (SIGTERM)". */
fun describe(status: ExitStatus): String = when (val signal = status.signal) {
    null -> "exited with status ${status.exitCode}"
    else -> "killed by signal $signal" + (signalName(signal)?.let { " ($it)" } ?: "") +
        (if (status.coreDumped) ", core dumped" else "")
}

private fun signalName(signal: Int): String? = when (signal) {
    1 -> "SIGHUP"; 2 -> "SIGINT"; 3 -> "SIGQUIT"; 6 -> "SIGABRT"; 9 -> "SIGKILL"
    11 -> "SIGSEGV"; 13 -> "SIGPIPE"; 15 -> "SIGTERM"
    else -> null
}
