package dev.prefork

import dev.prefork.testing.ProcFs
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.withTimeout
import java.time.Duration
import java.util.concurrent.TimeUnit

class WaitForExitTimeoutTest : FunSpec({
    fun sh(script: String) = Subprocess.builder("sh", "-c", script)

    test("Kotlin: withTimeout around waitForExit terminates the child") {
        val p = Subprocess.builder("sleep", "30").startDetached()
        shouldThrow<kotlinx.coroutines.TimeoutCancellationException> { withTimeout(200) { p.waitForExit() } }
        p.onExit().get(10, TimeUnit.SECONDS) shouldBe -15
        ProcFs.state(p.pid).shouldBeNull()
    }

    test("blocking: a timeout terminates the child and names the command and the duration") {
        val p = Subprocess.builder("sleep", "30").startDetached()
        val e = shouldThrow<SubprocessTimeoutException> { p.waitForExitBlocking(Duration.ofMillis(200)) }
        e.message shouldBe "Command [sleep, 30] timed out after 200 ms"
        e.stdout.shouldBeNull()
        p.onExit().get(10, TimeUnit.SECONDS) shouldBe -15
        // A child that ends in time: its code, and CalledProcessError as without a timeout.
        sh("exit 0").startDetached().waitForExitBlocking(Duration.ofSeconds(10)) shouldBe 0
        sh("exit 5").startDetached().waitForExitBlocking(Duration.ofSeconds(10), raiseError = false) shouldBe 5
        shouldThrow<CalledProcessError> { sh("exit 5").startDetached().waitForExitBlocking(Duration.ofSeconds(10)) }
        // Too long for nanoseconds is no timeout.
        sh("exit 0").startDetached().waitForExitBlocking(Duration.ofSeconds(Long.MAX_VALUE)) shouldBe 0
    }

    test("blocking: many short children waited for from several threads at once, each on its own thread, leave nothing") {
        leavesNothing(children = true) {
            val codes = java.util.concurrent.ConcurrentLinkedQueue<Int>()
            val callbacks = java.util.concurrent.CountDownLatch(4 * 50)
            val waiters = List(4) { t ->
                kotlin.concurrent.thread(name = "waiter $t") {
                    repeat(50) { i ->
                        val p = sh("exit ${(t * 50 + i) % 7}").startDetached()
                        p.setExitCallback { callbacks.countDown() }
                        // Half of them with a timeout; a second wait returns the same code.
                        val code = if (i % 2 == 0) p.waitForExitBlocking(Duration.ofSeconds(10), raiseError = false) else p.waitForExitBlocking(raiseError = false)
                        p.waitForExitBlocking(raiseError = false) shouldBe code
                        codes += code
                    }
                }
            }
            waiters.forEach { it.join(60_000) }
            codes.sorted() shouldBe List(200) { it % 7 }.sorted()
            callbacks.await(10, TimeUnit.SECONDS) shouldBe true
        }
    }

    test("blocking: a timeout shorter than the wait on the waiter's own thread, and a zero one") {
        for (millis in listOf(3L, 0L)) {
            val p = Subprocess.builder("sleep", "30").startDetached()
            shouldThrow<SubprocessTimeoutException> { p.waitForExitBlocking(Duration.ofMillis(millis)) }
            p.onExit().get(10, TimeUnit.SECONDS) shouldBe -15
        }
    }
})
