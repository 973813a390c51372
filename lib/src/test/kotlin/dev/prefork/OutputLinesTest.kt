package dev.prefork

import dev.prefork.RecordingLogger.Record
import dev.prefork.StdStream.STDERR
import dev.prefork.StdStream.STDOUT
import dev.prefork.testing.ProcFs
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContainExactly
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldNotContain
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.withTimeout
import org.slf4j.event.Level
import kotlin.time.Duration.Companion.seconds

class OutputLinesTest : FunSpec({
    fun sh(script: String) = Subprocess.builder("sh", "-c", script)

    fun out(text: String) = OutputLine(STDOUT, text)
    fun err(text: String) = OutputLine(STDERR, text)

    test("lines of both streams, tagged, in the order the child wrote them") {
        withTimeout(20_000) {
            leavesNothing {
                sh("echo a; sleep 0.2; echo b >&2; sleep 0.2; echo c; echo d; sleep 0.2; echo e >&2; sleep 0.2; echo f")
                    .stdout(Redirect.STREAM).stderr(Redirect.STREAM).startDetached().use { p ->
                        p.outputLines().toList() shouldContainExactly listOf(out("a"), err("b"), out("c"), out("d"), err("e"), out("f"))
                        p.waitForExit() shouldBe 0
                    }
            }
        }
    }

    test("100k lines on each stream: all delivered, each stream in order, no deadlock") {
        val script = "import sys\nfor i in range(100000):\n    print('o%d' % i)\n    print('e%d' % i, file=sys.stderr)"
        withTimeout(60_000) {
            leavesNothing {
                Subprocess.builder("python3", "-c", script).stdout(Redirect.STREAM).stderr(Redirect.STREAM).startDetached().use { p ->
                    val lines = p.outputLines().toList()
                    p.waitForExit() shouldBe 0
                    lines.size shouldBe 200_000
                    lines.filter { it.stream == STDOUT }.map { it.text } shouldBe List(100_000) { "o$it" }
                    lines.filter { it.stream == STDERR }.map { it.text } shouldBe List(100_000) { "e$it" }
                }
            }
        }
    }

    test("\\r\\n terminators are stripped, the unterminated last line of each stream is kept, as its stream ends") {
        withTimeout(20_000) {
            // "three" is a line only once stdout ends: here before stderr's lines, by closing it.
            sh("printf 'one\\r\\ntwo\\nthree'; exec >&-; sleep 0.2; printf 'x\\r\\n\\ntail' >&2")
                .stdout(Redirect.STREAM).stderr(Redirect.STREAM).startDetached().use { p ->
                    p.outputLines().toList() shouldContainExactly listOf(out("one"), out("two"), out("three"), err("x"), err(""), err("tail"))
                }
        }
    }

    test("only one stream a pipe: its lines alone") {
        withTimeout(20_000) {
            sh("echo o; echo e >&2").stdout(Redirect.STREAM).stderr(Redirect.DEVNULL).startDetached().use { p ->
                p.stderr.shouldBeNull()
                p.outputLines().toList() shouldContainExactly listOf(out("o"))
            }
            sh("echo o; echo e >&2").stdout(Redirect.DEVNULL).stderr(Redirect.STREAM).startDetached().use { p ->
                p.outputLines().toList() shouldContainExactly listOf(err("e"))
            }
            // Merged into stdout: one pipe, one stream's tag.
            sh("echo o; echo e >&2").stdout(Redirect.STREAM).stderr(Redirect.STDOUT).startDetached().use { p ->
                p.outputLines().toList() shouldContainExactly listOf(out("o"), out("e"))
            }
        }
    }

    test("neither stream a pipe: IllegalStateException naming the command, at once") {
        sh("true").stdout(Redirect.DEVNULL).startDetached().use { p ->
            shouldThrow<IllegalStateException> { p.outputLines() }.message shouldBe
                "neither stdout nor stderr is Redirect.STREAM: [sh, -c, true]"
            shouldThrow<IllegalStateException> { p.forEachOutputLine { } }
        }
        val logger = RecordingLogger()
        sh("true").stdout(Redirect.toLogger(logger, Level.INFO)).startDetached().use { p ->
            shouldThrow<IllegalStateException> { p.outputLines() }
        }
    }

    test("cancelling the collector stops the reading only: the child runs on until closed, nothing leaked") {
        val script = "echo \$\$; exec python3 -c 'import time\nwhile True:\n    print(\"tick\", flush=True); time.sleep(0.01)'"
        withTimeout(20_000) {
            leavesNothing {
                val p = sh(script).stdout(Redirect.STREAM).stderr(Redirect.STREAM).startDetached()
                val first = p.outputLines().take(3).toList()
                first[0].stream shouldBe STDOUT
                first.drop(1) shouldContainExactly listOf(out("tick"), out("tick"))
                delay(200)
                ProcFs.alive(p.pid) shouldBe true
                p.returnCode.shouldBeNull()
                p.close()
                ProcFs.state(p.pid).shouldBeNull()
            }
        }
    }

    test("Redirect.toLogger: each line at its level, all logged by the time waitForExit returns, nothing leaked") {
        withTimeout(20_000) {
            leavesNothing {
                val outLog = RecordingLogger("out")
                val errLog = RecordingLogger("err")
                // Many lines written fast just before the exit: the last of them are still in flight when the child is reaped.
                val p = sh("echo one; echo two >&2; printf '{} three\\r\\n'; seq 1 20000; printf last")
                    .stdout(Redirect.toLogger(outLog, Level.INFO)).stderr(Redirect.toLogger(errLog, Level.WARN)).startDetached()
                p.stdout.shouldBeNull()
                p.stderr.shouldBeNull()
                p.waitForExit() shouldBe 0
                val logged = outLog.records()
                logged.take(2) shouldContainExactly listOf(Record(Level.INFO, "one"), Record(Level.INFO, "{} three"))
                logged.drop(2).map { it.message } shouldBe List(20000) { "${it + 1}" } + "last"
                logged.all { it.level == Level.INFO } shouldBe true
                errLog.records() shouldContainExactly listOf(Record(Level.WARN, "two"))
                p.close()
            }
        }
    }

    test("Redirect.toLogger at every level, and stderr merged into it") {
        for (level in Level.entries) {
            val logger = RecordingLogger()
            sh("echo o; echo e >&2").stdout(Redirect.toLogger(logger, level)).stderr(Redirect.STDOUT).startDetached().use { p ->
                p.waitForExit() shouldBe 0
            }
            logger.records() shouldContainExactly listOf(Record(level, "o"), Record(level, "e"))
        }
    }

    test("run(): a stream redirected to a logger is logged, not captured") {
        withTimeout(20_000) {
            val logger = RecordingLogger()
            val done = sh("echo logged; seq 1 1000; echo captured >&2").stdout(Redirect.toLogger(logger, Level.DEBUG)).run()
            done.stdout.shouldBeNull()
            done.stderrText() shouldBe "captured\n"
            logger.messages() shouldBe listOf("logged") + List(1000) { "${it + 1}" }
        }
    }

    test("a logger stream passed on to a background process: waitForExit waits for its end too") {
        withTimeout(20_000) {
            val logger = RecordingLogger()
            sh("echo now; (sleep 0.5; echo later) &").stdout(Redirect.toLogger(logger, Level.INFO)).startDetached().use { p ->
                p.waitForExit() shouldBe 0
                logger.messages() shouldContainExactly listOf("now", "later")
            }
        }
    }

    test("closing the Subprocess stops its logging and closes the pipe") {
        withTimeout(20_000) {
            leavesNothing {
                val logger = RecordingLogger()
                val p = sh("echo \$\$; exec sleep 30").stdout(Redirect.toLogger(logger, Level.INFO)).startDetached()
                eventually(5.seconds) { logger.messages().size shouldBe 1 }
                p.close()
                ProcFs.state(logger.messages()[0].toLong()).shouldBeNull()
            }
        }
    }

    test("a Subprocess closed while its logger pumps ends the logging quietly: nothing is logged as an error") {
        dev.prefork.testing.FixtureJvm("dev.prefork.fixtures.LoggerCloseFixtureKt", listOf("200")).use { f ->
            f.exitCode(60) shouldBe 0
            f.stdout() shouldBe "done\n"
            f.stderr() shouldNotContain "ERROR"
            f.stderr() shouldNotContain "Exception"
        }
    }

    test("Redirect.toLogger is refused for stdin") {
        shouldThrow<IllegalArgumentException> { sh("true").stdin(Redirect.toLogger(RecordingLogger(), Level.INFO)) }.message shouldBe
            "Redirect.toLogger is for stdout and stderr only"
    }
})
