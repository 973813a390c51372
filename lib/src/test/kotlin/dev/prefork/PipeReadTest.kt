package dev.prefork

import dev.prefork.testing.kill
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import java.io.ByteArrayOutputStream
import java.io.IOException

/** [PipeReader.read]: the suspending read into the caller's own array, after the pump hands the pipe over. */
class PipeReadTest : FunSpec({
    fun sh(script: String) = Subprocess.builder("sh", "-c", script).stdout(Redirect.STREAM)

    /** Everything [PipeReader.read] returns until -1, through [buffer] at [offset], [length] at a time. */
    suspend fun PipeReader.readAll(buffer: ByteArray, offset: Int, length: Int): ByteArray {
        val out = ByteArrayOutputStream()
        while (true) {
            val count = read(buffer, offset, length)
            if (count < 0) return out.toByteArray()
            out.write(buffer, offset, count)
        }
    }

    test("a bulk output arrives byte-exact through an offset into the caller's array, and each pipe is closed at its end") {
        val expected = (1..200_000).joinToString("\n", postfix = "\n").toByteArray()
        leavesNothing(children = true) {
            repeat(20) {
                val p = Subprocess.builder("seq", "1", "200000").stdout(Redirect.STREAM).startDetached()
                val got = p.stdout!!.readAll(ByteArray(70_000), offset = 3, length = 65_536)
                got.size shouldBe expected.size
                got.contentEquals(expected) shouldBe true
                p.stdout!!.read(ByteArray(8)) shouldBe -1 // and again, at the end
                p.waitForExit() shouldBe 0
            }
        }
    }

    test("the bytes held come first; then the pump stops and the other read functions go on reading the pipe itself") {
        leavesNothing {
            val p = sh("printf 'one\\ntwo\\n'; sleep 0.3; printf 'three\\nfour\\n'; sleep 0.3; printf 'five\\nsix'").startDetached()
            val stdout = p.stdout!!
            stdout.readUntil("\n".toByteArray()).decodeToString() shouldBe "one\n"
            // Whatever the reader holds past "one\n" is served first, the pipe only once that is used up.
            val out = ByteArrayOutputStream()
            val buffer = ByteArray(64)
            while (out.size() < "two\nthree\nfour\n".length) {
                val count = stdout.read(buffer, 0, 64)
                count shouldBeGreaterThan 0
                out.write(buffer, 0, count)
            }
            out.toString() shouldBe "two\nthree\nfour\n"
            // The pump has stopped: "five" and "six", written later, can only come from the pipe itself.
            stdout.channel.isClosedForReceive shouldBe true
            stdout.lines().toList() shouldBe listOf("five", "six")
            stdout.read(buffer) shouldBe -1
            p.waitForExit() shouldBe 0
        }
    }

    test("an inputStream() taken after read() goes on through the same counted reads, and ends at -1, not EBADF") {
        leavesNothing {
            val p = sh("printf head; sleep 0.3; head -c 300000 /dev/zero; sleep 0.2; printf tail").startDetached()
            val stdout = p.stdout!!
            val first = ByteArray(4)
            var filled = 0
            while (filled < 4) filled += stdout.read(first, filled, 4 - filled)
            first.decodeToString() shouldBe "head"
            val rest = stdout.inputStream().readAllBytes()
            rest.size shouldBe 300_004
            rest.copyOfRange(300_000, 300_004).decodeToString() shouldBe "tail"
            stdout.inputStream().read() shouldBe -1
            p.waitForExit() shouldBe 0
        }
    }

    test("read() after close() or after inputStream() was taken: a clear error, and nothing left open") {
        leavesNothing {
            val p = sh("echo never read").startDetached()
            p.waitForExit() shouldBe 0
            p.close()
            shouldThrow<IOException> { p.stdout!!.read(ByteArray(8)) }.message shouldContain "stdout of sh"
            val q = sh("echo via the stream").startDetached()
            q.stdout!!.inputStream()
            shouldThrow<IllegalStateException> { q.stdout!!.read(ByteArray(8)) }.message shouldContain "inputStream() of stdout of sh"
            q.stdout!!.inputStream().readAllBytes().decodeToString() shouldBe "via the stream\n"
            q.waitForExit() shouldBe 0
        }
    }

    test("close() racing the first read: the read ends (at the end of stream or with IOException), and the pipe is closed either way") {
        leavesNothing(children = true) {
            repeat(30) { round ->
                // cat holds its stdout open and silent while its stdin is open: only the close ends the read.
                val p = Subprocess.builder("cat").stdin(Redirect.STREAM).stdout(Redirect.STREAM).startDetached()
                val reading = async(Dispatchers.Default) { runCatching { p.stdout!!.read(ByteArray(1024)) } }
                if (round % 2 == 0) delay(5)
                p.close()
                // close() terminates cat first: a read may see its end (-1) before the pipe is released.
                val result = withTimeout(5_000) { reading.await() }
                withClue({ "round $round: the read gave $result" }) {
                    (result.getOrNull() == -1 || result.exceptionOrNull() is IOException) shouldBe true
                }
            }
        }
    }

    test("a read waiting on a silent pipe is woken by close(): IOException naming the pipe, and nothing left open") {
        leavesNothing {
            // The grandchild holds the pipe open and writes nothing: only the close can end the wait.
            val p = sh("sleep 30 & echo \$!").startDetached()
            val sleeper = p.stdout!!.readUntil("\n".toByteArray()).decodeToString().trim().toLong()
            try {
                val reading = async(Dispatchers.Default) { runCatching { p.stdout!!.read(ByteArray(1024)) } }
                delay(200) // the read is waiting on the reactor by now
                reading.isCompleted shouldBe false
                p.close()
                val failure = withTimeout(5_000) { reading.await() }.exceptionOrNull()
                (failure is IOException) shouldBe true
                failure!!.message shouldContain "stdout of sh"
                failure.message shouldContain "was closed"
                shouldThrow<IOException> { p.stdout!!.read(ByteArray(8)) }
            } finally {
                kill(sleeper, 9) // by its own pid: this test JVM never signals a group
            }
        }
    }

    test("a read cancelled while it waits on the pipe loses nothing: the next one gets the data") {
        leavesNothing {
            val p = sh("sleep 0.5; echo late").startDetached()
            withTimeoutOrNull(100) { p.stdout!!.read(ByteArray(64)) }.shouldBeNull()
            p.stdout!!.readAll(ByteArray(64), offset = 0, length = 64).decodeToString() shouldBe "late\n"
            p.waitForExit() shouldBe 0
        }
    }

    test("bounds outside the array are refused before anything is read, and a zero length reads nothing") {
        val p = sh("printf abc").startDetached()
        val stdout = p.stdout!!
        shouldThrow<IndexOutOfBoundsException> { stdout.read(ByteArray(8), 5, 10) }
        shouldThrow<IndexOutOfBoundsException> { stdout.read(ByteArray(8), -1, 2) }
        stdout.read(ByteArray(8), 8, 0) shouldBe 0
        stdout.readAll(ByteArray(8), offset = 0, length = 8).decodeToString() shouldBe "abc"
        p.waitForExit() shouldBe 0
    }
})
