package dev.prefork

import dev.prefork.testing.ProcFs
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.ints.shouldBeLessThan
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import kotlinx.coroutines.launch
import kotlinx.coroutines.withTimeout
import java.io.IOException
import java.security.MessageDigest
import java.time.Duration
import kotlin.random.Random
import kotlin.time.Duration.Companion.seconds

class RunTest : FunSpec({
    fun sh(script: String) = Subprocess.builder("sh", "-c", script)

    /** The child's pid, from the first line the script printed (`echo $$`), is neither running nor a zombie. */
    fun shouldBeGone(output: ByteArray) {
        val pid = output.decodeToString().substringBefore('\n').trim().toLong()
        ProcFs.state(pid).shouldBeNull()
    }

    test("captures stdout and stderr apart, with the return code and exit status") {
        val done = sh("printf out; printf err >&2; exit 3").run()
        done.stdoutText() shouldBe "out"
        done.stderrText() shouldBe "err"
        done.returnCode shouldBe 3
        done.exitStatus.exitCode shouldBe 3
        done.command shouldBe listOf("sh", "-c", "printf out; printf err >&2; exit 3")
    }

    test("text in a chosen charset") {
        sh("printf '\\351t\\351'").run().stdoutText(Charsets.ISO_8859_1) shouldBe "été"
    }

    test("a redirected stream is not captured: null, and stderr merged into stdout") {
        val merged = sh("printf out; printf err >&2").stderr(Redirect.STDOUT).run()
        merged.stdoutText() shouldBe "outerr"
        merged.stderr.shouldBeNull()
        val file = kotlin.io.path.createTempFile()
        try {
            val toFile = sh("printf out; printf err >&2").stdout(Redirect.file(file)).run()
            toFile.stdout.shouldBeNull()
            toFile.stderrText() shouldBe "err"
            java.nio.file.Files.readString(file) shouldBe "out"
        } finally {
            java.nio.file.Files.delete(file)
        }
    }

    test("input is refused with stdin redirected elsewhere") {
        shouldThrow<IllegalArgumentException> { Subprocess.builder("cat").stdin(Redirect.DEVNULL).input(ByteArray(1)).run() }
            .message shouldBe "input given, but stdin is DEVNULL"
    }

    test("check: CalledProcessError carries the return code, stdout and stderr") {
        val e = shouldThrow<CalledProcessError> { sh("echo partial; echo broken >&2; exit 4").check(true).run() }
        e.returnCode shouldBe 4
        e.command shouldBe listOf("sh", "-c", "echo partial; echo broken >&2; exit 4")
        e.stdout!!.decodeToString() shouldBe "partial\n"
        e.stderr!!.decodeToString() shouldBe "broken\n"
        // Without check, the same run returns.
        sh("exit 4").run().returnCode shouldBe 4
    }

    test("50 MB of input to children that read none of it: they end normally, no deadlock, no leak") {
        val input = ByteArray(50_000_000)
        withTimeout(30_000) {
            leavesNothing(threads = true) {
                sh("sleep 0.2").input(input).run().returnCode shouldBe 0
                Subprocess.builder("true").input(input).run().returnCode shouldBe 0
                Subprocess.builder("head", "-c", "10").input(input).run().stdout!!.size shouldBe 10
            }
        }
    }

    test("50 MB round trip through cat while its 50 MB of output is captured") {
        val input = Random(7).nextBytes(50_000_000)
        withTimeout(60_000) {
            val done = leavesNothing(threads = true) { Subprocess.builder("cat").input(input).run() }
            done.returnCode shouldBe 0
            done.stdout!!.size shouldBe input.size
            MessageDigest.getInstance("SHA-256").digest(done.stdout) shouldBe MessageDigest.getInstance("SHA-256").digest(input)
        }
    }

    test("a timeout during 100 MB of output: the child is terminated and reaped, the output so far comes with the error") {
        // 1 MB every 50 ms, 100 of them: about 5 s, cut at 1 s.
        val script = "echo \$\$; exec python3 -c 'import sys, time\n" +
            "for i in range(100):\n    sys.stdout.buffer.write(b\"x\" * 1000000); sys.stdout.flush(); time.sleep(0.05)'"
        withTimeout(30_000) {
            val e = leavesNothing(threads = true) {
                // Not a timed assertion: less than all 100 MB below shows the timeout cut the child short.
                shouldThrow<SubprocessTimeoutException> { sh(script).timeout(Duration.ofSeconds(1)).run() }
            }
            e.timeout shouldBe Duration.ofSeconds(1)
            e.message shouldBe "Command [sh, -c, $script] timed out after 1000 ms"
            val out = e.stdout!!
            out.size shouldBeGreaterThan 1_000_000
            out.size shouldBeLessThan 100_000_000
            out.decodeToString().substringAfter('\n').all { it == 'x' } shouldBe true
            e.stderr!!.size shouldBe 0
            shouldBeGone(out)
        }
    }

    test("a child that ignores SIGTERM is killed after terminateTimeout when the run times out") {
        withTimeout(30_000) {
            val started = System.nanoTime()
            val e = shouldThrow<SubprocessTimeoutException> {
                sh("echo \$\$; exec python3 -c 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(30)'")
                    .terminateTimeout(Duration.ofMillis(500)).timeout(Duration.ofSeconds(1)).run()
            }
            // SIGTERM at 1 s did nothing; SIGKILL at 1.5 s did.
            (System.nanoTime() - started >= 1_500_000_000L) shouldBe true
            shouldBeGone(e.stdout!!)
        }
    }

    test("output past maxOutput: a clear error, the child terminated and reaped, nothing leaked") {
        withTimeout(30_000) {
            val e = leavesNothing(threads = true) {
                shouldThrow<SubprocessOutputLimitException> {
                    sh("echo \$\$ >&2; exec cat /dev/zero").maxOutput(1_000_000).run()
                }
            }
            e.stream shouldBe StdStream.STDOUT
            e.limit shouldBe 1_000_000
            e.message shouldBe "Command [sh, -c, echo \$\$ >&2; exec cat /dev/zero] wrote more than 1000000 bytes to stdout (maxOutput)"
            // Exactly at the cap is fine.
            Subprocess.builder("head", "-c", "1000000", "/dev/zero").maxOutput(1_000_000).run().stdout!!.size shouldBe 1_000_000
            shouldThrow<SubprocessOutputLimitException> { sh("printf 12345 >&2").maxOutput(4).run() }.stream shouldBe StdStream.STDERR
        }
    }

    test("a command that does not exist: the spawn's IOException, nothing leaked") {
        val e = leavesNothing(threads = true) { shouldThrow<IOException> { Subprocess.builder("no-such-program-xyz").input(ByteArray(10)).run() } }
        e.message shouldBe "Cannot run program \"no-such-program-xyz\": error=2 (ENOENT), No such file or directory"
    }

    test("cancelling the caller of run terminates and reaps the child") {
        val pidFile = kotlin.io.path.createTempFile()
        try {
            withTimeout(20_000) {
                val job = launch { sh("echo \$\$ > '$pidFile'; exec sleep 30").run() }
                eventually(5.seconds) { java.nio.file.Files.readString(pidFile).isNotBlank() shouldBe true }
                val pid = java.nio.file.Files.readString(pidFile).trim().toLong()
                ProcFs.alive(pid) shouldBe true
                job.cancel()
                job.join()
                // join returns only once the run reaped its child
                ProcFs.state(pid).shouldBeNull()
            }
        } finally {
            java.nio.file.Files.delete(pidFile)
        }
    }

    test("bad options are refused") {
        shouldThrow<IllegalArgumentException> { Subprocess.builder("true").timeout(Duration.ofMillis(-1)) }.message shouldBe "timeout < 0: PT-0.001S"
        shouldThrow<IllegalArgumentException> { Subprocess.builder("true").maxOutput(-1) }.message shouldContain "maxOutput not in 0.."
    }
})
