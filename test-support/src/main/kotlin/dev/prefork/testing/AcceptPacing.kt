package dev.prefork.testing

import io.kotest.assertions.withClue
import io.kotest.matchers.collections.shouldContain
import io.kotest.matchers.ints.shouldBeLessThanOrEqual
import java.net.Socket

/**
 * The accept pacing of a server of 2 workers on [port], whose `GET /spin/N` answers its head at
 * once with the worker's pid in `X-Pid`, then keeps a CPU busy for N ms (or until the client
 * goes away) before it ends the answer. [processors] maps each worker's pid to its processors.
 *
 * Once one worker has a spinning request for each of its processors, new connections go to the
 * other: one of 10 may still reach the busy one (it may see how busy it is only when it
 * accepts); once both are busy, a connection is still answered, after the longest hold.
 * Without pacing, the busy worker takes about half of them.
 */
fun checkAcceptPacing(port: Int, processors: Map<Long, Int>) {
    require(processors.size == 2) { "2 workers, not ${processors.size}: $processors" }
    val spins = mutableListOf<Socket>()
    /** A request that keeps one CPU of the worker that took it busy for 60 s, or until closed; its worker's pid. */
    fun spin(): Long {
        val socket = Socket("127.0.0.1", port).also { spins += it }
        socket.soTimeout = 10_000
        socket.getOutputStream().write("GET /spin/60000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".toByteArray())
        val head = socket.getInputStream().bufferedReader().lineSequence().takeWhile { it.isNotEmpty() }.toList()
        return head.single { it.startsWith("X-Pid:", ignoreCase = true) }.substringAfter(':').trim().toLong()
    }
    try {
        val spinning = processors.keys.associateWith { 0 }.toMutableMap()
        fun full(pid: Long) = spinning.getValue(pid) >= processors.getValue(pid)
        while (processors.keys.none(::full)) spinning.merge(spin(), 1, Int::plus)
        val busy = processors.keys.single(::full)
        val other = processors.keys.single { it != busy }
        Thread.sleep(300) // its CPU use shows over the pacer's window
        val answered = (1..10).map { pidIn(get(port))!! }
        withClue("busy $busy, other $other, answered by $answered") { answered.count { it == busy } shouldBeLessThanOrEqual 1 }
        while (!full(other)) spinning.merge(spin(), 1, Int::plus)
        Thread.sleep(300)
        processors.keys shouldContain pidIn(get(port, timeoutMillis = 20_000))!!
    } finally {
        spins.forEach { it.close() }
    }
}
