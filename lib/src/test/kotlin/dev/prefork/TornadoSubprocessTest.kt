package dev.prefork

import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.withTimeout

/** Tornado's `tornado/test/process_test.py` SubprocessTest, one test for each of theirs. */
class TornadoSubprocessTest : FunSpec({
    val python = "python3"

    fun term(python: Subprocess) = python.close()

    test("subprocess: interactive python over pipes") {
        withTimeout(20_000) {
            val subproc = Subprocess.builder(python, "-u", "-i")
                .stdin(Redirect.STREAM).stdout(Redirect.STREAM).stderr(Redirect.STDOUT)
                .startDetached()
            try {
                val stdout = subproc.stdout!!
                stdout.readUntil(">>> ".toByteArray())
                subproc.stdin!!.write("print('hello')\n".toByteArray())
                stdout.readUntil("\n".toByteArray()).decodeToString() shouldBe "hello\n"
                stdout.readUntil(">>> ".toByteArray())
                subproc.stdin!!.write("raise SystemExit\n".toByteArray())
                stdout.readUntilClose().decodeToString() shouldBe ""
            } finally {
                term(subproc)
            }
        }
    }

    test("close stdin") {
        withTimeout(20_000) {
            val subproc = Subprocess.builder(python, "-u", "-i")
                .stdin(Redirect.STREAM).stdout(Redirect.STREAM).stderr(Redirect.STDOUT)
                .startDetached()
            try {
                subproc.stdout!!.readUntil(">>> ".toByteArray())
                subproc.stdin!!.close()
                subproc.stdout!!.readUntilClose().decodeToString() shouldBe "\n"
            } finally {
                term(subproc)
            }
        }
    }

    test("stderr") {
        withTimeout(20_000) {
            val subproc = Subprocess.builder(python, "-u", "-c", "import sys; sys.stderr.write('hello\\n')")
                .stderr(Redirect.STREAM)
                .startDetached()
            subproc.stderr!!.readUntil("\n".toByteArray()).decodeToString() shouldBe "hello\n"
            subproc.waitForExit() shouldBe 0
        }
    }

    test("sigchild: exit callback") {
        withTimeout(20_000) {
            val subproc = Subprocess.builder(python, "-c", "pass").startDetached()
            val called = CompletableDeferred<Int>()
            subproc.setExitCallback { called.complete(it) }
            val ret = called.await()
            ret shouldBe 0
            subproc.returnCode shouldBe ret
        }
    }

    test("sigchild future: waitForExit") {
        withTimeout(20_000) {
            val subproc = Subprocess.builder(python, "-c", "pass").startDetached()
            val ret = subproc.waitForExit()
            ret shouldBe 0
            subproc.returnCode shouldBe ret
        }
    }

    test("sigchild signal: SIGTERM gives -15") {
        withTimeout(20_000) {
            val subproc = Subprocess.builder(python, "-c", "import time; time.sleep(30)")
                .stdout(Redirect.STREAM)
                .startDetached()
            val called = CompletableDeferred<Int>()
            subproc.setExitCallback { called.complete(it) }
            subproc.terminate()
            val ret = called.await()
            subproc.returnCode shouldBe ret
            ret shouldBe -15
        }
    }

    test("waitForExit raises CalledProcessError") {
        withTimeout(20_000) {
            val subproc = Subprocess.builder(python, "-c", "import sys; sys.exit(1)").startDetached()
            val error = shouldThrow<CalledProcessError> { subproc.waitForExit() }
            error.returnCode shouldBe 1
            error.command shouldBe listOf(python, "-c", "import sys; sys.exit(1)")
        }
    }

    test("waitForExit with raiseError = false") {
        withTimeout(20_000) {
            val subproc = Subprocess.builder(python, "-c", "import sys; sys.exit(1)").startDetached()
            subproc.waitForExit(raiseError = false) shouldBe 1
        }
    }
})
