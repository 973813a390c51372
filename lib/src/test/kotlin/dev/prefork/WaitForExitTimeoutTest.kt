package dev.prefork

import dev.prefork.testing.ProcFs
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.core.test.Enabled
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.withTimeout
import java.time.Duration
import java.util.concurrent.TimeUnit

class WaitForExitTimeoutTest : FunSpec({
    fun sh(script: String) = Subprocess.builder("sh", "-c", script)

    /** 50 children of waiter [t], each waited for twice, half of them with a timeout. */
    fun waitForMany(t: Int, codes: java.util.Queue<Int>, callbacks: java.util.concurrent.CountDownLatch) {
        repeat(50) { i ->
            val p = sh("exit ${(t * 50 + i) % 7}").startDetached()
            p.setExitCallback { callbacks.countDown() }
            val code = if (i % 2 == 0) p.waitForExitBlocking(Duration.ofSeconds(10), raiseError = false) else p.waitForExitBlocking(raiseError = false)
            p.waitForExitBlocking(raiseError = false) shouldBe code
            codes += code
        }
    }

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

    test("blocking: many short children waited for from several threads at once leave nothing") {
        leavesNothing(children = true) {
            val codes = java.util.concurrent.ConcurrentLinkedQueue<Int>()
            val failures = java.util.concurrent.ConcurrentLinkedQueue<Throwable>()
            val callbacks = java.util.concurrent.CountDownLatch(4 * 50)
            val waiters = List(4) { t ->
                kotlin.concurrent.thread(name = "waiter $t") {
                    try {
                        waitForMany(t, codes, callbacks)
                    } catch (e: Throwable) {
                        failures += e
                    }
                }
            }
            val deadline = System.nanoTime() + 60_000_000_000L
            waiters.forEach { it.join(maxOf(1L, (deadline - System.nanoTime()) / 1_000_000)) }
            failures.firstOrNull()?.let { throw it }
            codes.sorted() shouldBe List(200) { it % 7 }.sorted()
            callbacks.await(10, TimeUnit.SECONDS) shouldBe true
        }
    }

    test("blocking: a virtual thread's wait (JDK 21+), which parks on the latch at once").config(enabledOrReasonIf = {
        if (Runtime.version().feature() >= 21) Enabled.enabled else Enabled.disabled("virtual threads need JDK 21, this is ${Runtime.version()}")
    }) {
        val startVirtual = Thread::class.java.getMethod("startVirtualThread", Runnable::class.java)
        val codes = java.util.concurrent.ConcurrentLinkedQueue<Int>()
        val waiters = List(20) { i ->
            startVirtual.invoke(null, Runnable { codes += sh("sleep 0.05; exit $i").startDetached().waitForExitBlocking(raiseError = false) }) as Thread
        }
        waiters.forEach { it.join(30_000) }
        codes.sorted() shouldBe List(20) { it }
    }

    test("blocking: a timeout shorter than the wait on the waiter's own thread, and a zero one") {
        for (millis in listOf(3L, 0L)) {
            val p = Subprocess.builder("sleep", "30").startDetached()
            p.exitWatch.shouldNotBeNull() // pidfds: the blocking wait waits on its own thread first
            shouldThrow<SubprocessTimeoutException> { p.waitForExitBlocking(Duration.ofMillis(millis)) }
            p.onExit().get(10, TimeUnit.SECONDS) shouldBe -15
        }
        // The wait on the waiter's thread never outlasts the timeout.
        Subprocess.directWaitMillis(null) shouldBe 10
        Subprocess.directWaitMillis(0) shouldBe 0
        Subprocess.directWaitMillis(3_000_000) shouldBe 3
        Subprocess.directWaitMillis(10_500_000) shouldBe 10
        Subprocess.directWaitMillis(Long.MAX_VALUE) shouldBe 10
    }
})
