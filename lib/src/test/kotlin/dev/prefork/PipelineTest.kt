package dev.prefork

import dev.prefork.testing.ProcFs
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContainExactly
import io.kotest.matchers.longs.shouldBeLessThan
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldStartWith
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.launch
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import java.io.File
import java.io.IOException
import java.nio.file.Files
import java.time.Duration
import kotlin.random.Random
import kotlin.time.Duration.Companion.seconds

class PipelineTest : FunSpec({
    fun cmd(vararg command: String) = Subprocess.builder(*command)
    fun sh(script: String) = Subprocess.builder("sh", "-c", script)

    fun Pipeline.shouldBeGone() {
        for (member in members) {
            withClue("${member.command} (pid ${member.pid})") {
                member.returnCode.shouldNotBeNull()
                ProcFs.state(member.pid).shouldBeNull()
            }
        }
    }

    test("data flows through printf | tr | wc, and each member's status is kept") {
        withTimeout(30_000) {
            leavesNothing(children = true) {
                val pipeline = Pipeline.builder(cmd("printf", "one\\ntwo\\nthree\\n"), cmd("tr", "a-z", "A-Z"), cmd("sort", "-r").stdout(Redirect.STREAM))
                    .startDetached()
                pipeline.use {
                    it.stdout!!.readUntilClose().decodeToString() shouldBe "TWO\nTHREE\nONE\n"
                    it.waitForExit() shouldBe 0
                    it.returnCodes shouldBe listOf(0, 0, 0)
                    it.returnCode shouldBe 0
                }
                val done = Pipeline.builder(cmd("printf", "one\\ntwo\\n"), cmd("tr", "a-z", "A-Z"), cmd("wc", "-c")).run()
                done.stdoutText()!!.trim() shouldBe "8"
                done.returnCodes shouldBe listOf(0, 0, 0)
                done.members.map { it.command } shouldBe listOf(listOf("printf", "one\\ntwo\\n"), listOf("tr", "a-z", "A-Z"), listOf("wc", "-c"))
                done.members.map { it.stderr!!.size } shouldBe listOf(0, 0, 0) // each member's stderr captured apart
            }
        }
    }

    test("100 MB through head | cat | wc -c: none of it passes through this JVM") {
        // Per thread: the process's own /proc/self/io adds in the I/O of every child it reaped.
        fun io(): Long = File("/proc/self/task").listFiles().orEmpty().sumOf { task ->
            runCatching {
                File(task, "io").readLines().filter { it.startsWith("rchar:") || it.startsWith("wchar:") }
                    .sumOf { it.substringAfter(':').trim().toLong() }
            }.getOrDefault(0L)
        }
        withTimeout(60_000) {
            leavesNothing(children = true) {
                val before = io()
                val done = Pipeline.builder(cmd("head", "-c", "100000000", "/dev/zero"), cmd("cat"), cmd("wc", "-c")).check(true).run()
                val moved = io() - before
                done.stdoutText()!!.trim() shouldBe "100000000"
                done.returnCodes shouldBe listOf(0, 0, 0)
                // All this JVM read and wrote meanwhile (wc's line, the reactor's own, class files): far below 100 MB.
                moved shouldBeLessThan 10_000_000L
            }
        }
    }

    test("first stdin from a file, last stdout to a file: 20 MB through cat | gzip | gunzip, byte-exact") {
        val input = Files.createTempFile("pipeline-in", ".bin")
        val output = Files.createTempFile("pipeline-out", ".bin")
        try {
            val bytes = Random(11).nextBytes(20_000_000)
            Files.write(input, bytes)
            withTimeout(60_000) {
                leavesNothing(children = true) {
                    val pipeline = Pipeline.builder(
                        cmd("cat").stdin(Redirect.file(input)),
                        cmd("gzip", "-1"),
                        cmd("gzip", "-d").stdout(Redirect.file(output)),
                    ).startDetached()
                    pipeline.use { it.waitForExit() shouldBe 0 }
                    pipeline.stdin.shouldBeNull()
                    pipeline.stdout.shouldBeNull()
                }
            }
            Files.readAllBytes(output).contentEquals(bytes) shouldBe true
        } finally {
            Files.delete(input)
            Files.delete(output)
        }
    }

    test("first stdin and last stdout as STREAM; a member's stderr as its builder says") {
        withTimeout(30_000) {
            leavesNothing(children = true) {
                Pipeline.builder(
                    cmd("cat").stdin(Redirect.STREAM),
                    // Line by line: tr alone would hold its output until the end of its input.
                    sh("echo oops >&2; while read -r line; do echo \"\$line\" | tr a-z A-Z; done").stderr(Redirect.STREAM),
                    cmd("cat").stdout(Redirect.STREAM),
                ).startDetached().use {
                    it.stdin!!.write("hello\n".toByteArray())
                    it.stdout!!.readUntil("\n".toByteArray()).decodeToString() shouldBe "HELLO\n"
                    it.members[1].stderr!!.readUntil("\n".toByteArray()).decodeToString() shouldBe "oops\n"
                    it.stdin!!.close()
                    it.stdout!!.readUntilClose().size shouldBe 0
                    it.waitForExit() shouldBe 0
                    it.members[0].stderr.shouldBeNull() // inherited
                }
                // stderr merged into the pipe to the next member: bash's `|&`.
                Pipeline.builder(sh("echo err >&2; echo out").stderr(Redirect.STDOUT), cmd("cat")).run().stdoutText() shouldBe "err\nout\n"
                // DEVNULL in, the last stdout logged line by line.
                val logger = RecordingLogger()
                Pipeline.builder(sh("cat; echo a; echo b").stdin(Redirect.DEVNULL), cmd("tr", "a-z", "A-Z").stdout(Redirect.toLogger(logger, org.slf4j.event.Level.INFO)))
                    .startDetached().use { it.waitForExit() shouldBe 0 }
                logger.messages() shouldBe listOf("A", "B")
            }
        }
    }

    test("run(): input to the first member, the last one's stdout captured") {
        withTimeout(30_000) {
            leavesNothing(children = true) {
                val done = Pipeline.builder(cmd("sort"), cmd("uniq", "-c"), cmd("sort", "-rn"), cmd("head", "-1"))
                    .input("b\na\nb\nc\nb\n".toByteArray()).run()
                done.stdoutText()!!.trim() shouldBe "3 b"
                shouldThrow<IllegalArgumentException> {
                    Pipeline.builder(cmd("cat").stdin(Redirect.DEVNULL), cmd("cat")).input(ByteArray(1)).run()
                }.message shouldBe "input given, but stdin of pipeline member 0 ([cat]) is DEVNULL"
            }
        }
    }

    test("PIPESTATUS with a failing middle member; pipefail and check as bash's") {
        withTimeout(30_000) {
            leavesNothing(children = true) {
                val members = { listOf(cmd("true"), sh("exit 3"), cmd("cat")) }
                Pipeline.builder(members()).startDetached().use {
                    it.waitForExit() shouldBe 0 // the last member's, as bash's $?
                    it.returnCodes shouldBe listOf(0, 3, 0)
                    it.returnCode shouldBe 0
                }
                Pipeline.builder(members()).pipefail(true).startDetached().use {
                    it.waitForExit(raiseError = false) shouldBe 3
                    val e = shouldThrow<CalledProcessError> { it.waitForExit() }
                    e.returnCode shouldBe 3
                    e.command shouldBe listOf("sh", "-c", "exit 3")
                    it.returnCodes shouldBe listOf(0, 3, 0)
                }
                // A signal death is a negative code; pipefail takes the last failure, not the first.
                Pipeline.builder(sh("kill -TERM \$\$"), sh("cat >/dev/null; exit 4"), cmd("true")).pipefail(true).startDetached().use {
                    it.waitForExit(raiseError = false) shouldBe 4
                    it.returnCodes shouldBe listOf(-15, 4, 0)
                }
                val e = shouldThrow<CalledProcessError> {
                    Pipeline.builder(cmd("echo", "x"), sh("cat >/dev/null; echo broken >&2; exit 5"), cmd("cat")).pipefail(true).check(true).run()
                }
                e.returnCode shouldBe 5
                e.command shouldBe listOf("sh", "-c", "cat >/dev/null; echo broken >&2; exit 5")
                e.stderr!!.decodeToString() shouldBe "broken\n"
                e.stdout!!.size shouldBe 0
                // Without pipefail, check looks at the last member only.
                Pipeline.builder(cmd("false"), cmd("true")).check(true).run().returnCodes shouldBe listOf(1, 0)
            }
        }
    }

    context("a member that cannot start: a clear error, the members started before it killed and reaped, no fd left") {
        test("a missing command in the middle") {
            withTimeout(30_000) {
                leavesNothing(children = true) {
                    val e = shouldThrow<IOException> {
                        Pipeline.builder(cmd("sleep", "30"), cmd("no-such-program-xyz", "-v"), cmd("cat")).startDetached()
                    }
                    e.message shouldBe "Cannot run program \"no-such-program-xyz\": error=2 (ENOENT), No such file or directory"
                }
                leavesNothing(children = true) {
                    shouldThrow<IOException> {
                        Pipeline.builder(cmd("yes"), cmd("cat"), cmd("no-such-program-xyz")).run()
                    }.message shouldBe "Cannot run program \"no-such-program-xyz\": error=2 (ENOENT), No such file or directory"
                }
            }
        }

        test("a suspend start() whose last member is missing, in a scope that goes on") {
            withTimeout(30_000) {
                leavesNothing(children = true) {
                    coroutineScope {
                        shouldThrow<IOException> { Pipeline.builder(cmd("sleep", "30"), cmd("sleep", "30"), cmd("no-such-program-xyz")).start() }
                    }
                }
            }
        }

        test("a missing input file of the first member and a bad directory of the last") {
            withTimeout(30_000) {
                leavesNothing(children = true) {
                    shouldThrow<IOException> {
                        Pipeline.builder(cmd("cat").stdin(Redirect.file(java.nio.file.Path.of("/no/such/input"))), cmd("cat")).startDetached()
                    }.message!! shouldStartWith "open \"/no/such/input\""
                    shouldThrow<IOException> {
                        Pipeline.builder(cmd("sleep", "30"), cmd("cat").cwd(java.nio.file.Path.of("/no/such/dir"))).startDetached()
                    }.message shouldBe "Cannot run program \"cat\": directory \"/no/such/dir\" does not exist or is not a directory"
                }
            }
        }
    }

    test("invalid pipelines are refused before anything starts") {
        shouldThrow<IllegalArgumentException> { Pipeline.builder() }.message shouldBe "pipeline has no members"
        shouldThrow<IllegalArgumentException> {
            Pipeline.builder(cmd("echo").stdout(Redirect.DEVNULL), cmd("cat")).startDetached()
        }.message shouldBe "stdout of pipeline member 0 ([echo]) is DEVNULL, but it is the pipe to member 1"
        shouldThrow<IllegalArgumentException> {
            Pipeline.builder(cmd("echo"), cmd("cat").stdin(Redirect.STREAM)).startDetached()
        }.message shouldBe "stdin of pipeline member 1 ([cat]) is STREAM, but it is the pipe from member 0"
        shouldThrow<IllegalArgumentException> {
            Pipeline.builder(cmd("echo"), cmd("cat").timeout(Duration.ofSeconds(1))).run()
        }.message shouldBe "timeout is set on pipeline member 1 ([cat]): give it to the pipeline"
        shouldThrow<IllegalArgumentException> {
            Pipeline.builder(cmd("echo").pty(), cmd("cat")).startDetached()
        }.message shouldBe "pty() is set on pipeline member 0 ([echo]): a member's stdin and stdout are the pipeline's"
        ProcFs.zombieChildren() shouldBe emptyList()
    }

    test("each member holds only fds 0, 1 and 2: no other member's pipe end") {
        withTimeout(30_000) {
            leavesNothing(children = true) {
                Pipeline.builder(cmd("sleep", "30"), cmd("sleep", "30"), cmd("sleep", "30")).startDetached().use { pipeline ->
                    for (member in pipeline.members) {
                        eventually(5.seconds) { ProcFs.openFds(member.pid) shouldContainExactly listOf(0, 1, 2) }
                    }
                    pipeline.members[0].stdin.shouldBeNull()
                    // Each pipe joins two members only: this JVM holds no end of it.
                    fun link(pid: Long, fd: Int) = Files.readSymbolicLink(java.nio.file.Path.of("/proc/$pid/fd/$fd")).toString()
                    val (first, second, third) = pipeline.members.map { it.pid }
                    val pipes = listOf(link(first, 1), link(third, 0))
                    pipes.forEach { it shouldStartWith "pipe:" }
                    link(second, 0) shouldBe pipes[0]
                    link(second, 1) shouldBe pipes[1]
                    (pipes[0] == pipes[1]) shouldBe false
                    openFds().values.filter { it in pipes } shouldBe emptyList()
                }
            }
        }
    }

    context("a running pipeline ends as one: every member killed and reaped, every fd closed") {
        fun busy() = Pipeline.builder(cmd("yes"), cmd("cat"), cmd("sleep", "30"))

        /*
         * sleep can only have ended by SIGTERM, yes by a signal (SIGTERM, or SIGPIPE once cat was gone); cat may also
         * have seen the end of its input first, and exited 0.
         */
        fun Pipeline.endedByTermination() {
            returnCodes[2] shouldBe -15
            (returnCodes[0]!! in setOf(-15, -13)) shouldBe true
            (returnCodes[1]!! in setOf(-15, -13, 0)) shouldBe true
        }

        suspend fun Pipeline.allRunning() = eventually(5.seconds) { members.forEach { ProcFs.alive(it.pid) shouldBe true } }

        test("close()") {
            withTimeout(30_000) {
                leavesNothing(children = true) {
                    val pipeline = busy().startDetached()
                    try {
                        pipeline.allRunning()
                    } finally {
                        pipeline.close()
                    }
                    pipeline.shouldBeGone()
                    pipeline.endedByTermination()
                }
            }
        }

        test("cancelling the scope of start()") {
            withTimeout(30_000) {
                leavesNothing(children = true) {
                    val started = CompletableDeferred<Pipeline>()
                    coroutineScope {
                        val job = launch {
                            started.complete(busy().start())
                            awaitCancellation()
                        }
                        started.await().allRunning()
                        job.cancelAndJoin() // joins once every member exited: they are the job's
                    }
                    started.await().shouldBeGone()
                    started.await().endedByTermination()
                }
            }
        }

        test("cancelling waitForExit of a detached pipeline") {
            withTimeout(30_000) {
                leavesNothing(children = true) {
                    val pipeline = busy().startDetached()
                    try {
                        pipeline.allRunning()
                        withTimeoutOrNull(300) { pipeline.waitForExit() }.shouldBeNull()
                        eventually(10.seconds) { pipeline.returnCode.shouldNotBeNull() }
                        pipeline.shouldBeGone()
                        pipeline.endedByTermination()
                    } finally {
                        pipeline.close()
                    }
                }
            }
        }

        test("members that ignore SIGTERM are killed after their terminateTimeout") {
            withTimeout(30_000) {
                leavesNothing(children = true) {
                    // "ready" once SIGTERM is ignored, on stderr for the first (its stdout is the pipe), stdout for the last.
                    val stubborn = { out: String -> "trap '' TERM; echo ready$out; while :; do sleep 0.1; done" }
                    val pipeline = Pipeline.builder(
                        sh(stubborn(" >&2")).stderr(Redirect.STREAM).terminateTimeout(Duration.ofMillis(200)),
                        cmd("cat"),
                        sh(stubborn("")).stdout(Redirect.STREAM).terminateTimeout(Duration.ofMillis(200)),
                    ).startDetached()
                    try {
                        pipeline.members[0].stderr!!.readUntil("\n".toByteArray()).decodeToString() shouldBe "ready\n"
                        pipeline.stdout!!.readUntil("\n".toByteArray()).decodeToString() shouldBe "ready\n"
                        pipeline.allRunning()
                    } finally {
                        pipeline.close()
                    }
                    pipeline.returnCodes shouldBe listOf(-9, -15, -9)
                }
            }
        }

        test("a run() past its timeout: every member terminated and reaped, the error names the pipeline") {
            withTimeout(30_000) {
                leavesNothing(children = true) {
                    val e = shouldThrow<SubprocessTimeoutException> {
                        Pipeline.builder(cmd("yes"), cmd("head", "-c", "1000"), cmd("sleep", "30")).timeout(Duration.ofMillis(500)).run()
                    }
                    e.message shouldBe "Command [yes, |, head, -c, 1000, |, sleep, 30] timed out after 500 ms"
                    e.stdout!!.size shouldBe 0
                    e.stderr.shouldBeNull()
                }
            }
        }

        test("a run() past maxOutput names the member and stream") {
            withTimeout(30_000) {
                leavesNothing(children = true) {
                    shouldThrow<SubprocessOutputLimitException> {
                        Pipeline.builder(cmd("yes"), cmd("cat")).maxOutput(100_000).run()
                    }.message shouldBe "Command [cat] wrote more than 100000 bytes to stdout (maxOutput)"
                }
            }
        }
    }
})
