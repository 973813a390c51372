package dev.prefork.reaper

import dev.prefork.posix.Spawn
import dev.prefork.posix.Wait
import dev.prefork.posix.WaitResult
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
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
})
