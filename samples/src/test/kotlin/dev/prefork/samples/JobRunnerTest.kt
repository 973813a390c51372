package dev.prefork.samples

import dev.prefork.testing.FixtureJvm
import dev.prefork.testing.ProcFs
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContainInOrder
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldNotContain
import java.nio.file.Path
import java.util.concurrent.TimeUnit

private const val MAIN = "dev.prefork.samples.JobRunnerKt"
private const val ESC = "\u001b"

/** The job runner in a fresh JVM, its output a pipe (not a terminal), as in CI. */
private fun runPiped(vararg args: String): Pair<Int, String> =
    FixtureJvm(MAIN, args.toList()).use { jvm -> jvm.exitCode(seconds = 120) to jvm.stdout() }

/**
 * The job runner on a pseudo-terminal made by util-linux's `script`, and the bytes it wrote
 * there. `TERM` is set: the runner draws its status line only for a terminal that is not dumb.
 */
private fun runOnTerminal(vararg args: String): Pair<Int, String> {
    val java = Path.of(System.getProperty("java.home"), "bin", "java").toString()
    val nativeFlags = System.getProperty("prefork.test.nativeFlags", "--enable-native-access=ALL-UNNAMED")
        .split(" ").filter { it.isNotBlank() }
    val command = listOf(java) + nativeFlags + listOf("-cp", System.getProperty("java.class.path"), MAIN) + args
    val script = ProcessBuilder("script", "--quiet", "--flush", "--return", "--command", command.joinToString(" ", transform = ::shellQuote), "/dev/null")
        .redirectInput(ProcessBuilder.Redirect.PIPE)
        .redirectErrorStream(true)
    script.environment()["TERM"] = "xterm"
    val process = script.start()
    try {
        val output = process.inputStream.readBytes().toString(Charsets.UTF_8)
        check(process.waitFor(120, TimeUnit.SECONDS)) { "script did not exit; output:\n$output" }
        return process.exitValue() to output
    } finally {
        (process.descendants().toList() + process.toHandle()).forEach { it.destroyForcibly() }
    }
}

private fun shellQuote(word: String): String = "'" + word.replace("'", "'\\''") + "'"

/**
 * What a terminal shows once the bytes have been written: each `CR` moves back to the start of
 * the line and `ESC [K` erases what was there, so only the text after the last erase remains.
 */
private fun screen(bytes: String): List<String> = bytes.replace("\r\n", "\n").split("\n")
    .map { line -> line.substringAfterLast("\r$ESC[K").substringAfterLast("\r") }
    .dropLastWhile { it.isEmpty() }

class JobRunnerTest : FunSpec({
    test("the demo, piped: every job's lines whole, a plain progress line after each job, no escape code, exit 0") {
        val (exitCode, out) = runPiped()
        withClue(out) {
            exitCode shouldBe 0
            out shouldNotContain ESC
            val lines = out.lines()
            val progress = lines.filter { it.startsWith("[runner] progress: ") }
            progress shouldHaveSize 9
            progress.map { it.substringAfter("progress: ").substringBefore(" of") } shouldBe (1..9).map { it.toString() }
            progress.last() shouldBe "[runner] progress: 9 of 9 finished (2 failed), 0 running, 0 waiting"
            lines shouldContainInOrder (1..25).map { "[job 4] line $it of 25" }
            lines shouldContainInOrder listOf("[job 1] step 1", "[job 1] step 2", "[job 1] step 3", "[job 1] exited with status 0")
                .map { expected -> lines.first { it.startsWith(expected) } }
            out shouldContain "[job 2 err] warning: disk 91% full (made up)"
            out shouldContain "[job 9] slept 1 s as job 9" // JOB_ID, added to the inherited environment
            out shouldContain "[job 8] killed by signal 15 (SIGTERM)"
            out shouldContain "[runner] demo OK: every job ended as expected"
        }
    }

    test("a job past --timeout is stopped with what its shell started; the others finish; exit 1") {
        val (exitCode, out) = runPiped("--timeout", "1", "sleep 60 & echo child \$!; wait", "echo hi", "exit 4")
        withClue(out) {
            exitCode shouldBe 1
            val child = Regex("""\[job 1] child (\d+)""").find(out)!!.groupValues[1].toLong()
            ProcFs.alive(child) shouldBe false // gone, or a zombie of init's: the runner's process group got SIGTERM
            out shouldContain "[job 1] timed out (limit 1.000 s): killed by signal 15 (SIGTERM) after "
            out shouldContain "[job 2] hi"
            out shouldContain "[job 3] exited with status 4"
            out.lines().first { it.startsWith("  1  ") } shouldContain "timed out"
            out shouldContain "[runner] 2 of 3 failed: job 1, job 3"
        }
    }

    test("bad options: a clear message, the usage, exit 2, no job run") {
        FixtureJvm(MAIN, listOf("--timeout", "0", "echo never")).use { jvm ->
            jvm.exitCode() shouldBe 2
            jvm.stderr() shouldContain "job-runner: --timeout: not in (0, 31536000] seconds: 0"
            jvm.stderr() shouldContain "usage: job-runner"
            jvm.stdout() shouldBe ""
        }
        FixtureJvm(MAIN, listOf("--progress", "sometimes")).use { jvm ->
            jvm.exitCode() shouldBe 2
            jvm.stderr() shouldContain "job-runner: --progress: not auto, always or never: sometimes"
        }
    }

    test("on a terminal: a live status line redrawn under the output, erased at the end; the screen shows every line") {
        val jobs = arrayOf("--parallel", "2", "echo a1; sleep 0.6; echo a2", "echo b1; exit 3", "sleep 0.8; echo c1")
        val (exitCode, bytes) = runOnTerminal(*jobs)
        val shown = screen(bytes)
        withClue(bytes) {
            exitCode shouldBe 1
            bytes shouldContain "\r$ESC[K"
            bytes shouldContain "[runner] 0 of 3 finished (0 failed), 2 running, 1 waiting, "
            bytes shouldContain "[runner] 3 of 3 finished (1 failed), 0 running, 0 waiting, "
            bytes shouldNotContain "[runner] progress: " // the plain lines are for pipes
            shown.none { it.startsWith("[runner] ") && it.contains(" running, ") } shouldBe true
            shown shouldContainInOrder listOf("[job 1] a1", "[job 1] a2")
            shown shouldContainInOrder listOf("[job 2] b1", "[job 2] exited with status 3 after", "[job 3] c1")
                .map { expected -> shown.first { it.startsWith(expected) } }
            shown.last() shouldBe "[runner] 1 of 3 failed: job 2"
        }
        // The same jobs piped show the same lines, in their own order, and none of the status line.
        val (pipedExit, piped) = runPiped(*jobs)
        pipedExit shouldBe 1
        piped shouldNotContain ESC
        piped.lines().filter { it.startsWith("[job") && !it.contains(" after ") }.toSet() shouldBe
            shown.filter { it.startsWith("[job") && !it.contains(" after ") }.toSet()
    }
})
