package dev.prefork.reaper

import dev.prefork.posix.Spawn
import dev.prefork.posix.Wait
import dev.prefork.posix.WaitResult
import dev.prefork.openFds
import dev.prefork.testing.ProcFs
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.booleans.shouldBeTrue
import io.kotest.matchers.ints.shouldBeLessThanOrEqual
import io.kotest.matchers.longs.shouldBeLessThan
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import java.util.concurrent.atomic.AtomicReference
import kotlin.concurrent.thread
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.withTimeout

class ReactorTest : FunSpec({
    fun spawn(script: String): Int = Spawn.spawn(
        listOf("sh", "-c", script),
        System.getenv().map { (k, v) -> "$k=$v" },
        null,
        intArrayOf(Spawn.INHERIT, Spawn.INHERIT, Spawn.INHERIT),
    )

    suspend fun exitOf(reactor: Reactor, pid: Int): WaitResult {
        val done = CompletableDeferred<WaitResult>()
        reactor.watchExit(pid) { Wait.reap(pid)?.also { done.complete(it) } != null }
        return withTimeout(10_000) { done.await() }
    }

    for (usePidfd in listOf(true, false)) {
        test("usePidfd=$usePidfd: exits are delivered, fast or slow, and ProcessBuilder keeps its own") {
            val reactor = Reactor(usePidfd)
            val builder = ProcessBuilder("sh", "-c", "sleep 0.2; exit 4").start()
            exitOf(reactor, spawn("exit 5")).exitCode shouldBe 5
            exitOf(reactor, spawn("sleep 0.3; exit 6")).exitCode shouldBe 6
            val killed = spawn("sleep 30")
            Wait.kill(killed, 9)
            exitOf(reactor, killed).returnCode shouldBe -9
            builder.waitFor() shouldBe 4
        }
    }

    /** The thread that reaped [pid], once one did. */
    class Reaper(private val pid: Int) : Reapable {
        val thread = AtomicReference<Thread?>()
        override fun tryReap(): Boolean = (Wait.reap(pid) != null).also { if (it) thread.set(Thread.currentThread()) }
    }

    fun pidfds(): Int = openFds().values.count { it == "anon_inode:[pidfd]" }

    test("awaitHere: the exit wakes the waiting thread, which reaps the child and closes its pidfd") {
        val reactor = Reactor(usePidfd = true)
        val pidfdsBefore = pidfds()
        val pid = spawn("sleep 0.2")
        val reaper = Reaper(pid)
        val watch = reactor.watchExit(pid, reaper).shouldNotBeNull()
        watch.awaitHere(10_000)
        reaper.thread.get() shouldBe Thread.currentThread()
        ProcFs.state(pid.toLong()).shouldBeNull()
        reactor.isWatching(pid) shouldBe false
        // Another spec's child may be reaped meanwhile (its pidfd closed), none opened.
        pidfds() shouldBeLessThanOrEqual pidfdsBefore
        // Once reaped, the watch is done: a later wait returns at once.
        watch.awaitHere(10_000)
    }

    test("awaitHere: a child that outlives the wait is the reactor's again, and the reactor reaps it") {
        val reactor = Reactor(usePidfd = true)
        val pid = spawn("sleep 0.3")
        val reaper = Reaper(pid)
        val watch = reactor.watchExit(pid, reaper).shouldNotBeNull()
        watch.awaitHere(10)
        reaper.thread.get().shouldBeNull()
        ProcFs.alive(pid.toLong()).shouldBeTrue()
        eventually(10.seconds) { reaper.thread.get()?.name shouldBe "prefork-reactor" }
        reactor.isWatching(pid) shouldBe false
    }

    test("awaitHere: a second waiter returns at once while the first holds the watch") {
        val reactor = Reactor(usePidfd = true)
        val pid = spawn("sleep 30")
        val reaper = Reaper(pid)
        val watch = reactor.watchExit(pid, reaper).shouldNotBeNull()
        val first = thread(name = "first waiter") { watch.awaitHere(20_000) }
        try {
            Thread.sleep(200) // the first is in its poll by now
            val started = System.nanoTime()
            watch.awaitHere(20_000)
            // Without the state it would poll the same pidfd until the kill below: 20 s.
            (System.nanoTime() - started) / 1_000_000 shouldBeLessThan 10_000L
            ProcFs.alive(pid.toLong()).shouldBeTrue()
        } finally {
            Wait.kill(pid, 9)
            first.join(10_000)
        }
        reaper.thread.get()?.name shouldBe "first waiter"
    }

    test("watchExit without pidfds: no watch to wait on") {
        val pid = spawn("exit 0")
        val reaper = Reaper(pid)
        Reactor(usePidfd = false).watchExit(pid, reaper).shouldBeNull()
        eventually(10.seconds) { reaper.thread.get()?.name shouldBe "prefork-reactor" }
    }
})
