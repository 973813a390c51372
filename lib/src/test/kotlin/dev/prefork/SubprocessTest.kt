package dev.prefork

import dev.prefork.posix.cString
import dev.prefork.testing.ProcFs
import dev.prefork.testing.kill
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContainExactly
import io.kotest.matchers.ints.shouldBeLessThanOrEqual
import io.kotest.matchers.longs.shouldBeGreaterThan
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import java.io.IOException
import java.nio.file.Files
import java.security.MessageDigest
import java.util.concurrent.TimeUnit
import kotlin.random.Random
import kotlin.time.Duration.Companion.seconds

class SubprocessTest : FunSpec({
    fun sh(script: String) = Subprocess.builder("sh", "-c", script)

    context("the child holds only the fds it was given") {
        test("with three pipes: exactly 0, 1 and 2, even when the JVM holds non-CLOEXEC fds") {
            // An fd opened without O_CLOEXEC, as much JVM and JNI code does, must still not leak.
            val leaky = dev.prefork.posix.Native.posix.let { it.open(it.cString("/dev/null"), 0, 0) }
            val server = java.net.ServerSocket(0)
            try {
                val child = Subprocess.builder("sleep", "30")
                    .stdin(Redirect.STREAM).stdout(Redirect.STREAM).stderr(Redirect.STREAM).startDetached()
                // eventually: sleep briefly opens its own files (locale) while it starts; a leaked fd stays
                child.use { eventually(3.seconds) { ProcFs.openFds(it.pid) shouldContainExactly listOf(0, 1, 2) } }
            } finally {
                server.close()
                dev.prefork.posix.Fds.closeQuietly(leaky)
            }
        }

        test("where glibc lacks posix_spawn_file_actions_addclosefrom_np (before 2.34, as on RHEL 8): still only 0, 1 and 2") {
            // Each of the JVM's fds is then closed by a file action of its own.
            val leaky = dev.prefork.posix.Native.posix.let { it.open(it.cString("/dev/null"), 0, 0) }
            dev.prefork.posix.Spawn.closeFromAvailable = false
            try {
                Subprocess.builder("sleep", "30").stdout(Redirect.STREAM).startDetached().use {
                    eventually(3.seconds) { ProcFs.openFds(it.pid) shouldContainExactly listOf(0, 1, 2) }
                }
            } finally {
                dev.prefork.posix.Spawn.closeFromAvailable = true
                dev.prefork.posix.Fds.closeQuietly(leaky)
            }
        }

        test("with inherited stdio: still only 0, 1 and 2") {
            Subprocess.builder("sleep", "30").startDetached().use {
                eventually(3.seconds) { ProcFs.openFds(it.pid) shouldContainExactly listOf(0, 1, 2) }
            }
        }
    }

    test("no fd, thread or zombie growth over 1000 spawns") {
        suspend fun spawnAndDrain() {
            val p = Subprocess.builder("/bin/echo", "x")
                .stdin(Redirect.STREAM).stdout(Redirect.STREAM).stderr(Redirect.STREAM).startDetached()
            p.stdin!!.close()
            p.stdout!!.readUntilClose().decodeToString() shouldBe "x\n"
            p.stderr!!.readUntilClose().size shouldBe 0
            p.waitForExit() shouldBe 0
        }
        withTimeout(120_000) {
            repeat(50) { spawnAndDrain() }
            delay(200)
            val fdsBefore = ProcFs.openFds().size
            val threadsBefore = ProcFs.threadCount()
            repeat(1000) { spawnAndDrain() }
            eventually(5.seconds) {
                ProcFs.openFds().size shouldBeLessThanOrEqual fdsBefore
            }
            ProcFs.threadCount() shouldBeLessThanOrEqual threadsBefore + 2
            ProcFs.zombieChildren() shouldBe emptyList()
        }
    }

    test("100 KB written just before exit always arrives in full, whatever wins the race") {
        withTimeout(120_000) {
            repeat(100) { round ->
                val p = Subprocess.builder("head", "-c", "102400", "/dev/urandom").stdout(Redirect.STREAM).startDetached()
                coroutineScope {
                    // Alternate who goes first: the exit watch, or the reader.
                    val exit = async { if (round % 2 == 0) p.waitForExit() else { delay(1); p.waitForExit() } }
                    val bytes = async { p.stdout!!.readUntilClose() }
                    bytes.await().size shouldBe 102400
                    exit.await() shouldBe 0
                }
            }
        }
    }

    test("64 MiB round trip through cat is byte-exact") {
        withTimeout(120_000) {
            val data = Random(42).nextBytes(64 * 1024 * 1024)
            val cat = Subprocess.builder("cat").stdin(Redirect.STREAM).stdout(Redirect.STREAM).startDetached()
            coroutineScope {
                launch(Dispatchers.Default) {
                    var offset = 0
                    while (offset < data.size) {
                        val n = minOf(100_000, data.size - offset)
                        cat.stdin!!.write(data.copyOfRange(offset, offset + n))
                        offset += n
                    }
                    cat.stdin!!.close()
                }
                val back = cat.stdout!!.readUntilClose()
                back.size shouldBe data.size
                MessageDigest.getInstance("SHA-256").digest(back) shouldBe MessageDigest.getInstance("SHA-256").digest(data)
            }
            cat.waitForExit() shouldBe 0
        }
    }

    test("ProcessBuilder children in the same JVM keep their exit codes") {
        withTimeout(120_000) {
            coroutineScope {
                val ours = (0 until 60).map { i ->
                    async { sh("exit ${i % 50}").startDetached().waitForExit(raiseError = false) shouldBe i % 50 }
                }
                val theirs = (0 until 60).map { i ->
                    async(Dispatchers.IO) {
                        val p = ProcessBuilder("sh", "-c", "exit ${(i % 50) + 1}").start()
                        p.waitFor(30, TimeUnit.SECONDS) shouldBe true
                        p.exitValue() shouldBe (i % 50) + 1
                    }
                }
                (ours + theirs).awaitAll()
            }
        }
    }

    context("cancellation") {
        test("cancelling a coroutine in waitForExit terminates the child") {
            withTimeout(20_000) {
                val p = Subprocess.builder("sleep", "30").startDetached()
                val waiter = launch { p.waitForExit() }
                delay(100)
                waiter.cancelAndJoin()
                p.onExit().get(10, TimeUnit.SECONDS) shouldBe -15
                ProcFs.alive(p.pid) shouldBe false
            }
        }

        test("a cancelled scope terminates the children it started, and waits for them") {
            withTimeout(20_000) {
                val started = CompletableDeferred<Subprocess>()
                val scope = launch {
                    val p = Subprocess.builder("sleep", "30").start()
                    started.complete(p)
                    // no waitForExit: the scope owns the child anyway
                }
                val p = started.await()
                delay(100)
                ProcFs.alive(p.pid) shouldBe true
                scope.cancelAndJoin()
                // cancelAndJoin returns only after the child was reaped
                p.returnCode shouldBe -15
            }
        }

        test("a caller cancelled while start() spawns does not leak the child") {
            withTimeout(20_000) {
                val marker = "31.${Random.nextInt(1000, 9999)}"
                val job = launch {
                    coroutineContext[kotlinx.coroutines.Job]!!.cancel()
                    Subprocess.builder("sleep", marker).start()
                }
                job.join()
                fun running() = java.io.File("/proc").list().orEmpty().filter { it.all(Char::isDigit) }.any { pid ->
                    runCatching { java.io.File("/proc/$pid/cmdline").readText() }.getOrDefault("") == "sleep\u0000$marker\u0000" &&
                        ProcFs.alive(pid.toLong())
                }
                eventually(5.seconds) { running() shouldBe false }
            }
        }

        test("a scope waits for the child it started before completing") {
            withTimeout(20_000) {
                lateinit var p: Subprocess
                coroutineScope { p = Subprocess.builder("sleep", "0.3").start() }
                p.returnCode shouldBe 0
            }
        }

        test("with newProcessGroup, cancellation stops the shell's own children too") {
            withTimeout(20_000) {
                val started = CompletableDeferred<Pair<Subprocess, Long>>()
                val scope = launch {
                    val p = sh("sleep 30 & echo \$!; wait").newProcessGroup().stdout(Redirect.STREAM).start()
                    started.complete(p to p.stdout!!.readUntil("\n".toByteArray()).decodeToString().trim().toLong())
                }
                val (shell, grandchild) = started.await()
                ProcFs.alive(grandchild) shouldBe true
                scope.cancelAndJoin()
                shell.returnCode shouldBe -15
                eventually(5.seconds) { ProcFs.alive(grandchild) shouldBe false }
            }
        }

        test("a child that ignores SIGTERM is killed after terminateTimeout") {
            withTimeout(20_000) {
                val p = Subprocess.builder(
                    "python3", "-c",
                    "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(30)",
                ).stdout(Redirect.STREAM).terminateTimeout(java.time.Duration.ofMillis(300)).startDetached()
                p.stdout!!.readUntil("ready\n".toByteArray())
                val waiter = launch { p.waitForExit() }
                delay(100)
                waiter.cancelAndJoin()
                p.onExit().get(10, TimeUnit.SECONDS) shouldBe -9
            }
        }
    }

    context("exit status") {
        test("exit code and signal are told apart, with resource usage") {
            val ok = sh("exit 7").startDetached()
            ok.waitForExit(raiseError = false) shouldBe 7
            ok.exitStatus!!.exitCode shouldBe 7
            ok.exitStatus!!.signal.shouldBeNull()

            val killed = Subprocess.builder("sleep", "30").startDetached()
            killed.kill()
            killed.waitForExit(raiseError = false) shouldBe -9
            killed.exitStatus!!.signal shouldBe 9
            killed.exitStatus!!.exitCode.shouldBeNull()
            killed.exitStatus.toString() shouldBe "killed by signal 9"
        }

        test("CPU time and peak RSS come from wait4") {
            // ru_maxrss is at least the JVM's own peak (the child ran in its memory until exec),
            // so the child must touch clearly more than that for the figure to be its own.
            val jvmPeak = java.io.File("/proc/self/status").readLines().first { it.startsWith("VmHWM:") }
                .split(Regex("\\s+"))[1].toLong() * 1024
            val size = jvmPeak + 96L * 1024 * 1024
            val p = Subprocess.builder(
                "python3", "-c",
                "b = bytearray($size)\nfor i in range(0, len(b), 4096): b[i] = 1\nx = sum(range(3000000))",
            ).startDetached()
            p.waitForExit() shouldBe 0
            p.exitStatus!!.maxRssBytes shouldBeGreaterThan size
            (p.exitStatus!!.userCpuTime + p.exitStatus!!.systemCpuTime).toMillis() shouldBeGreaterThan 10L
        }
    }

    context("exit callback") {
        test("runs exactly once, is not replaced by waitForExit or onExit, and a second one is refused") {
            val calls = java.util.concurrent.atomic.AtomicInteger()
            val done = CompletableDeferred<Int>()
            val p = sh("exit 3").startDetached()
            p.setExitCallback { calls.incrementAndGet(); done.complete(it) }
            shouldThrow<IllegalStateException> { p.setExitCallback { } }.message shouldContain "already set"
            p.waitForExit(raiseError = false) shouldBe 3
            p.onExit().get() shouldBe 3
            done.await() shouldBe 3
            delay(100)
            calls.get() shouldBe 1
        }

        test("onExit stages never run on the reactor thread, so they may block or spawn") {
            val p = Subprocess.builder("true").startDetached()
            val thread = p.onExit().thenApply {
                Subprocess.builder("true").startDetached().waitForExitBlocking() // would deadlock on the reactor
                Thread.currentThread().name
            }.get(10, TimeUnit.SECONDS)
            (thread == "prefork-reactor") shouldBe false
        }

        test("set after the exit, it still runs") {
            val p = Subprocess.builder("true").startDetached()
            p.waitForExit()
            val done = CompletableDeferred<Int>()
            p.setExitCallback { done.complete(it) }
            withTimeout(5_000) { done.await() } shouldBe 0
        }
    }

    context("pipes") {
        test("readUntil, readBytes and lines across chunk boundaries") {
            val p = sh("printf 'ab'; sleep 0.1; printf 'c--de'; sleep 0.1; printf 'f\\r\\nline2\\nlast'")
                .stdout(Redirect.STREAM).startDetached()
            p.stdout!!.readUntil("--".toByteArray()).decodeToString() shouldBe "abc--"
            p.stdout!!.readBytes(2).decodeToString() shouldBe "de"
            p.stdout!!.lines().toList() shouldBe listOf("f", "line2", "last")
            p.waitForExit() shouldBe 0
        }

        test("a line that continues in the next chunk, after lines taken from the first: no delimiter skipped") {
            // The second chunk lands where the first began: a search resumed at the old offset would miss "c\n".
            val p = sh("printf 'aaaaaaaa\\nb'; sleep 0.2; printf 'c\\nd\\ne\\n'").stdout(Redirect.STREAM).startDetached()
            p.stdout!!.lines().toList() shouldBe listOf("aaaaaaaa", "bc", "d", "e")
            p.waitForExit() shouldBe 0
        }

        test("readUntil and readBytes at end of stream throw EOFException naming the stream") {
            val p = sh("printf abc").stdout(Redirect.STREAM).startDetached()
            shouldThrow<java.io.EOFException> { p.stdout!!.readUntil("x".toByteArray()) }.message shouldContain "stdout of sh"
            val q = sh("printf abc").stdout(Redirect.STREAM).startDetached()
            shouldThrow<java.io.EOFException> { q.stdout!!.readBytes(4) }.message shouldContain "3 of 4 bytes"
            shouldThrow<IllegalArgumentException> { q.stdout!!.readBytes(-1) }.message shouldBe "n < 0: -1"
        }

        test("stderr merged into stdout with Redirect.STDOUT") {
            val p = sh("echo out; echo err >&2").stdout(Redirect.STREAM).stderr(Redirect.STDOUT).startDetached()
            p.stderr.shouldBeNull()
            p.stdout!!.lines().toList() shouldBe listOf("out", "err")
        }

        test("files and /dev/null") {
            val dir = Files.createTempDirectory("prefork-test")
            try {
                val input = dir.resolve("in.txt").also { Files.writeString(it, "from a file\n") }
                val out = dir.resolve("out.txt")
                Subprocess.builder("cat").stdin(Redirect.file(input)).stdout(Redirect.file(out)).startDetached().waitForExit()
                Subprocess.builder("cat").stdin(Redirect.file(input)).stdout(Redirect.appendTo(out)).startDetached().waitForExit()
                Files.readString(out) shouldBe "from a file\nfrom a file\n"
                val nul = Subprocess.builder("cat").stdin(Redirect.DEVNULL).stdout(Redirect.STREAM).startDetached()
                nul.stdout!!.readUntilClose().size shouldBe 0
            } finally {
                dir.toFile().deleteRecursively()
            }
        }

        test("cwd and env") {
            val dir = Files.createTempDirectory("prefork-cwd")
            try {
                val p = sh("pwd; echo \$GREETING; echo \${HOME:-unset}").cwd(dir).env(mapOf("GREETING" to "hi"))
                    .stdout(Redirect.STREAM).startDetached()
                p.stdout!!.lines().toList() shouldBe listOf(dir.toRealPath().toString(), "hi", "unset")
            } finally {
                dir.toFile().deleteRecursively()
            }
        }

        test("cancelling stdout frees the pipe at once, even while a grandchild keeps it open and silent") {
            val before = ProcFs.openFds().size
            repeat(20) {
                val p = sh("sleep 30 & echo \$!").stdout(Redirect.STREAM).startDetached()
                val sleeper = p.stdout!!.readUntil("\n".toByteArray()).decodeToString().trim().toLong()
                p.stdout!!.channel.cancel()
                p.waitForExit() shouldBe 0
                kill(sleeper, 9) // by its own pid: this test JVM never signals a group
            }
            eventually(5.seconds) { ProcFs.openFds().size shouldBeLessThanOrEqual before }
        }

        test("cancelling stdout closes the pipe: the child gets SIGPIPE") {
            val p = Subprocess.builder("yes").stdout(Redirect.STREAM).startDetached()
            p.stdout!!.readBytes(10)
            p.stdout!!.channel.cancel()
            withTimeout(10_000) { p.waitForExit(raiseError = false) } shouldBe -13
        }
    }

    context("bad input gets a clear error and leaks nothing") {
        test("missing executable: IOException naming it, with errno; no fd left behind") {
            Subprocess.builder("true").stdout(Redirect.STREAM).startDetached().waitForExit() // warm up
            val before = ProcFs.openFds().size
            repeat(100) {
                val e = shouldThrow<IOException> {
                    Subprocess.builder("no-such-program-xyz", "a")
                        .stdin(Redirect.STREAM).stdout(Redirect.STREAM).stderr(Redirect.STREAM).startDetached()
                }
                e.message shouldBe "Cannot run program \"no-such-program-xyz\": error=2 (ENOENT), No such file or directory"
            }
            ProcFs.openFds().size shouldBeLessThanOrEqual before
            ProcFs.zombieChildren() shouldBe emptyList()
        }

        test("a file that is not executable: EACCES") {
            val file = Files.createTempFile("prefork", ".sh")
            try {
                val e = shouldThrow<IOException> { Subprocess.builder(file.toString()).startDetached() }
                e.message shouldContain "EACCES"
                e.message shouldContain file.toString()
            } finally {
                Files.delete(file)
            }
        }

        test("bad cwd names the directory") {
            val before = ProcFs.openFds().size
            val e = shouldThrow<IOException> {
                Subprocess.builder("true").cwd(java.nio.file.Path.of("/no/such/dir")).stdout(Redirect.STREAM).startDetached()
            }
            e.message shouldBe "Cannot run program \"true\": directory \"/no/such/dir\" does not exist or is not a directory"
            ProcFs.openFds().size shouldBeLessThanOrEqual before
        }

        test("missing input file names the path, and the pipes opened before it are closed") {
            val before = ProcFs.openFds().size
            val e = shouldThrow<IOException> {
                Subprocess.builder("cat").stdout(Redirect.STREAM).stderr(Redirect.STREAM)
                    .stdin(Redirect.file(java.nio.file.Path.of("/no/such/input"))).startDetached()
            }
            e.message shouldBe "open \"/no/such/input\": error=2 (ENOENT), No such file or directory"
            ProcFs.openFds().size shouldBeLessThanOrEqual before
        }

        test("invalid builder arguments") {
            shouldThrow<IllegalArgumentException> { Subprocess.builder() }.message shouldBe "command is empty"
            shouldThrow<IllegalArgumentException> { Subprocess.builder("cat").stdin(Redirect.STDOUT) }
                .message shouldBe "Redirect.STDOUT is for stderr only"
            shouldThrow<IllegalArgumentException> { Subprocess.builder("cat").terminateTimeout(java.time.Duration.ofSeconds(-1)) }
                .message shouldBe "terminateTimeout < 0: PT-1S"
            shouldThrow<IllegalArgumentException> { Subprocess.builder("cat").env(mapOf("A=B" to "c")) }
                .message shouldBe "'=' in environment variable name: \"A=B\""
        }

        test("write to a closed stdin names the process") {
            val p = Subprocess.builder("cat").stdin(Redirect.STREAM).stdout(Redirect.DEVNULL).startDetached()
            p.stdin!!.close()
            val e = shouldThrow<IOException> { p.stdin!!.write("late".toByteArray()) }
            e.message shouldBe "stdin of cat (pid ${p.pid}) is closed"
            p.waitForExit() shouldBe 0
        }

        test("write after the child exited names the process; its stdin pipe is closed without being asked") {
            val before = ProcFs.openFds().size
            val p = Subprocess.builder("true").stdin(Redirect.STREAM).startDetached()
            p.waitForExit()
            val e = shouldThrow<IOException> { p.stdin!!.write(ByteArray(65536)) }
            e.message shouldBe "stdin of true (pid ${p.pid}) is closed: the process exited"
            eventually(5.seconds) { ProcFs.openFds().size shouldBeLessThanOrEqual before }
        }

        test("a child that stops reading: EPIPE, naming the process") {
            val p = sh("exec 0<&-; sleep 30").stdin(Redirect.STREAM).startDetached()
            try {
                val e = shouldThrow<IOException> {
                    withTimeout(10_000) { while (true) p.stdin!!.write(ByteArray(65536)) }
                }
                e.message shouldContain "stdin of sh"
                e.message shouldContain "EPIPE"
            } finally {
                p.close()
            }
        }
    }

    test("many live children cost no thread each") {
        withContext(Dispatchers.Default) {
            Subprocess.builder("true").startDetached().waitForExit()
            val before = ProcFs.threadCount()
            val children = (0 until 200).map { Subprocess.builder("sleep", "30").startDetached() }
            try {
                ProcFs.threadCount() shouldBeLessThanOrEqual before + 2
            } finally {
                children.forEach { it.kill() }
                children.forEach { it.waitForExit(raiseError = false) shouldBe -9 }
            }
        }
    }
})
