package dev.prefork

import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContain
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.withTimeout
import java.io.IOException

class PtyTest : FunSpec({
    fun python(script: String) = Subprocess.builder("python3", "-c", script)

    /** The reactor, the pools and a terminal's first use exist before a count. */
    val ptyWarmUp: suspend () -> Unit = { Subprocess.builder("true").pty().run() }

    suspend fun PipeReader.readText(until: String): String = readUntil(until.toByteArray()).decodeToString()

    test("python3 -i without -u: a prompt, a result, exit()") {
        withTimeout(30_000) {
            leavesNothing(warmUp = ptyWarmUp) {
                Subprocess.builder("python3", "-i").pty().startDetached().use { p ->
                    val stdout = p.stdout!!
                    stdout.readText(">>> ")
                    p.stdin!!.write("print(6*7)\n".toByteArray())
                    // The terminal echoes the line first; the result then comes at once, unflushed: stdout is a terminal.
                    stdout.readText("\r\n") shouldContain "print(6*7)"
                    stdout.readText("\r\n") shouldBe "42\r\n"
                    stdout.readText(">>> ")
                    p.stdin!!.write("exit()\n".toByteArray())
                    p.waitForExit() shouldBe 0
                    p.stderr.shouldBeNull()
                }
            }
        }
    }

    test("the terminal is the child's stdin, stdout, stderr and controlling terminal, its group in the foreground") {
        val script = """
            import os
            open('/dev/tty').close()
            print(os.isatty(0), os.isatty(1), os.isatty(2), os.tcgetpgrp(0) == os.getpgrp(), os.getsid(0) == os.getpid(), os.ttyname(0))
        """.trimIndent()
        withTimeout(20_000) {
            python(script).pty().startDetached().use { p ->
                val line = p.stdout!!.lines().toList().single()
                line.substringBefore(" /") shouldBe "True True True True True"
                line.substringAfter("True True True True True ") shouldContain "/dev/pts/"
                p.waitForExit() shouldBe 0
            }
        }
    }

    test("the window size, as stty sees it and after resize, with SIGWINCH") {
        withTimeout(20_000) {
            Subprocess.builder("stty", "size").pty(132, 43).run().stdout!!.decodeToString() shouldBe "43 132\r\n"
            val script = """
                import os, signal, sys
                signal.signal(signal.SIGWINCH, lambda *a: print('winch', *os.get_terminal_size(), flush=True))
                print('size', *os.get_terminal_size(), flush=True)
                sys.stdin.readline()
            """.trimIndent()
            python(script).pty(120, 40).echo(false).startDetached().use { p ->
                val stdout = p.stdout!!
                stdout.readText("\r\n") shouldBe "size 120 40\r\n"
                p.resize(100, 30)
                stdout.readText("\r\n") shouldBe "winch 100 30\r\n"
                p.stdin!!.write("\n".toByteArray())
                p.waitForExit() shouldBe 0
                p.resize(90, 20) // reaped: nothing to resize, and no error
            }
        }
    }

    test("a child killed by SIGKILL mid-line: the partial line arrives, the stream ends, nothing is left") {
        withTimeout(20_000) {
            leavesNothing(warmUp = ptyWarmUp) {
                Subprocess.builder("sh", "-c", "printf 'half a li'; kill -9 $$").pty().startDetached().use { p ->
                    p.stdout!!.readUntilClose().decodeToString() shouldBe "half a li"
                    p.waitForExit(raiseError = false) shouldBe -9
                    p.exitStatus!!.signal shouldBe 9
                }
            }
        }
    }

    test("echo(false): the child's input is not echoed; by default it is") {
        val script = "import sys; print(repr(sys.stdin.readline()))"
        withTimeout(20_000) {
            for (echo in listOf(true, false)) {
                python(script).pty().echo(echo).startDetached().use { p ->
                    p.stdin!!.write("abc\n".toByteArray())
                    val output = p.stdout!!.readUntilClose().decodeToString()
                    p.waitForExit() shouldBe 0
                    output shouldBe (if (echo) "abc\r\n" else "") + "'abc\\n'\r\n"
                }
            }
        }
    }

    test("Ctrl-D at the start of a line is the end of the child's input; closing stdin is not") {
        withTimeout(20_000) {
            Subprocess.builder("cat").pty().echo(false).startDetached().use { p ->
                p.stdin!!.write("hello\n\u0004".toByteArray())
                p.stdout!!.readUntilClose().decodeToString() shouldBe "hello\r\n"
                p.waitForExit() shouldBe 0
            }
            Subprocess.builder("cat").pty().terminateTimeout(java.time.Duration.ZERO).startDetached().use { p ->
                p.stdin!!.write("x\n".toByteArray())
                p.stdin!!.close()
                p.stdout!!.readText("x\r\nx\r\n") // the echo, then cat's copy
                delay(300)
                p.returnCode.shouldBeNull() // still reading its terminal
            }
        }
    }

    test("stderr(STREAM) with pty(): stderr is a pipe of its own, stdout the terminal") {
        val script = "import os, sys; print(os.isatty(1), os.isatty(2)); print('err', file=sys.stderr)"
        withTimeout(20_000) {
            python(script).pty().stderr(Redirect.STREAM).startDetached().use { p ->
                p.stdout!!.readUntilClose().decodeToString() shouldBe "True False\r\n"
                p.stderr!!.readUntilClose().decodeToString() shouldBe "err\n"
                p.waitForExit() shouldBe 0
            }
            val run = python(script).pty().stderr(Redirect.STREAM).run()
            run.stdout!!.decodeToString() shouldBe "True False\r\n"
            run.stderr!!.decodeToString() shouldBe "err\n"
        }
    }

    test("run() and outputLines() over a terminal; newProcessGroup() with it") {
        withTimeout(20_000) {
            val run = Subprocess.builder("sh", "-c", "test -t 0 && test -t 1 && echo tty; echo err >&2").pty().run()
            run.stdout!!.decodeToString() shouldBe "tty\r\nerr\r\n"
            run.stderr.shouldBeNull()
            val typed = Subprocess.builder("cat").pty().echo(false).input("typed\n\u0004".toByteArray()).run()
            typed.stdout!!.decodeToString() shouldBe "typed\r\n"
            Subprocess.builder("sh", "-c", "echo one; echo two").pty().newProcessGroup().startDetached().use { p ->
                p.outputLines().toList().map { it.text } shouldBe listOf("one", "two")
                p.waitForExit() shouldBe 0
            }
        }
    }

    test("bad input: a clear error, and nothing leaked") {
        withTimeout(20_000) {
            shouldThrow<IllegalArgumentException> { Subprocess.builder("cat").pty(0, 24) }.message shouldBe "pty columns not in 1..65535: 0"
            shouldThrow<IllegalArgumentException> { Subprocess.builder("cat").pty(80, 65536) }.message shouldBe "pty rows not in 1..65535: 65536"
            leavesNothing(warmUp = ptyWarmUp) {
                shouldThrow<IllegalArgumentException> { Subprocess.builder("cat").stdin(Redirect.DEVNULL).pty().startDetached() }
                    .message shouldBe "pty(): stdin is the terminal, not DEVNULL: cat"
                shouldThrow<IllegalArgumentException> { Subprocess.builder("cat").pty().stdout(Redirect.STREAM).startDetached() }
                    .message shouldBe "pty(): stdout is the terminal, not STREAM: cat"
                shouldThrow<IllegalArgumentException> { Subprocess.builder("cat").echo(false).startDetached() }
                    .message shouldBe "echo(false) without pty(): cat"
                val missing = shouldThrow<IOException> { Subprocess.builder("no-such-program-prefork").pty().startDetached() }
                missing.message shouldContain "no-such-program-prefork"
                missing.message shouldContain "ENOENT"
                Subprocess.builder("cat").pty().startDetached().use { p ->
                    shouldThrow<IllegalArgumentException> { p.resize(0, 10) }.message shouldBe "columns not in 1..65535: 0"
                    shouldThrow<IllegalArgumentException> { p.resize(10, -1) }.message shouldBe "rows not in 1..65535: -1"
                }
                Subprocess.builder("true").startDetached().use { p ->
                    shouldThrow<IllegalStateException> { p.resize(80, 24) }.message shouldBe "resize: [true] (pid ${p.pid}) was not started with pty()"
                    p.waitForExit() shouldBe 0
                }
            }
        }
    }

    test("a thousand pty children: no fd or zombie left") {
        withTimeout(120_000) {
            leavesNothing(warmUp = ptyWarmUp) {
                repeat(1000) {
                    Subprocess.builder("true").pty().startDetached().use { p -> p.waitForExit() shouldBe 0 }
                }
            }
        }
    }
})
