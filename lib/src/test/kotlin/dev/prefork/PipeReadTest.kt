package dev.prefork

import dev.prefork.testing.kill
import io.kotest.assertions.throwables.shouldThrow
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

    test("the bytes held and the pump's last chunks come first; the other read functions go on reading the pipe after it") {
        val p = sh("printf 'one\\ntwo\\n'; sleep 0.2; printf 'three\\nfour\\n'; sleep 0.2; printf 'five\\nsix'").startDetached()
        val stdout = p.stdout!!
        stdout.readUntil("\n".toByteArray()).decodeToString() shouldBe "one\n"
        val four = ByteArray(4)
        var filled = 0
        while (filled < 4) filled += stdout.read(four, filled, 4 - filled).also { it shouldBeGreaterThan 0 }
        four.decodeToString() shouldBe "two\n"
        stdout.readUntil("\n".toByteArray()).decodeToString() shouldBe "three\n"
        stdout.lines().toList() shouldBe listOf("four", "five", "six")
        stdout.read(ByteArray(16)) shouldBe -1
        p.waitForExit() shouldBe 0
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

    test("a read cancelled while it waits loses nothing: the next one gets the data") {
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
