package dev.prefork.bench

import java.io.EOFException
import java.io.IOException
import java.net.ConnectException
import java.net.InetAddress
import java.net.InetSocketAddress
import java.net.Socket
import java.net.SocketTimeoutException
import kotlin.concurrent.thread

/** What a [ForkServer][main] worker answered: its task id, its pid, and its handler's own time. */
internal class Answer(val id: Int, val pid: Long, val serviceMicros: Long)

private val LOOPBACK: InetAddress = InetAddress.getByName("127.0.0.1")

/**
 * `GET [path]` over a fresh HTTP/1.0 connection to 127.0.0.1:[port], as a browser without
 * keep-alive would. Every failure is an IOException: [EOFException] when the connection
 * closed without a complete response (the worker died after accepting it).
 */
internal fun fetch(port: Int, path: String, connectTimeoutMillis: Int, readTimeoutMillis: Int): Answer {
    Socket().use { socket ->
        socket.connect(InetSocketAddress(LOOPBACK, port), connectTimeoutMillis)
        socket.soTimeout = readTimeoutMillis
        socket.getOutputStream().write("GET $path HTTP/1.0\r\n\r\n".toByteArray())
        val response = socket.getInputStream().readAllBytes().toString(Charsets.ISO_8859_1)
        val split = response.indexOf("\r\n\r\n")
        if (!response.startsWith("HTTP/1.0 200") || split < 0) {
            throw EOFException(if (response.isEmpty()) "closed without a response" else "truncated response: \"$response\"")
        }
        val words = response.substring(split + 4).split(" ")
        return Answer(words[0].toInt(), words[1].toLong(), words[2].toLong())
    }
}

/** A failed request's kind, as the load report counts it. */
internal fun failureKind(e: Exception): String = when {
    e is ConnectException -> "refused"
    e is SocketTimeoutException -> "timeout"
    e is EOFException -> "eof"
    e.message?.contains("reset", ignoreCase = true) == true -> "reset"
    e.message?.contains("broken pipe", ignoreCase = true) == true -> "broken pipe"
    else -> "${e.javaClass.simpleName}: ${e.message}"
}

/**
 * Closed-loop load: [clients] threads, each sending `GET [path]` on a fresh connection and
 * waiting for the answer before the next, until [seconds] have passed. Meanwhile [during] runs
 * on the calling thread (given the deadline in [System.nanoTime] terms), e.g. to kill workers.
 */
internal class LoadClient(private val port: Int, private val path: String, private val clients: Int, private val readTimeoutMillis: Int) {
    /** One successful request: the worker's pid, when the answer arrived ([System.nanoTime]), and the handler's time. */
    class Served(val pid: Long, val atNanos: Long, val serviceMicros: Long)

    class Result(
        val ok: Long,
        val failures: Map<String, Long>,
        val seconds: Double,
        /** Wall-clock milliseconds per successful request, sorted. */
        val latencies: List<Double>,
        val byWorker: Map<Int, Long>,
        val served: List<Served>,
    ) {
        /** The median of the handler's own time, as the workers measured it. */
        val serviceMillis: Double get() = if (served.isEmpty()) Double.NaN else median(served.map { it.serviceMicros.toDouble() }) / 1000

        val perSecond: Double get() = ok / seconds
        val failed: Long get() = failures.values.sum()

        fun latency(quantile: Double): Double = if (latencies.isEmpty()) Double.NaN else latencies[((latencies.size - 1) * quantile).toInt()]

        override fun toString(): String {
            val failed = if (failures.isEmpty()) "0 failed" else "$failed failed (${failures.entries.joinToString { "${it.key} ${it.value}" }})"
            return "$ok ok (${perSecond.format(1)}/s), $failed in ${seconds.format(1)} s; latency ms p50 ${latency(0.5).format(1)} " +
                "p99 ${latency(0.99).format(1)} max ${latency(1.0).format(1)}"
        }
    }

    private class PerThread {
        var ok = 0L
        val failures = HashMap<String, Long>()
        val latencies = ArrayList<Double>()
        val byWorker = HashMap<Int, Long>()
        val served = ArrayList<Served>()
    }

    fun run(seconds: Double, during: (deadlineNanos: Long) -> Unit = {}): Result {
        val start = System.nanoTime()
        val deadline = start + (seconds * 1e9).toLong()
        val stats = List(clients) { PerThread() }
        val threads = stats.mapIndexed { index, mine ->
            thread(name = "load-client-$index") {
                while (System.nanoTime() < deadline) {
                    val sent = System.nanoTime()
                    try {
                        val answer = fetch(port, path, readTimeoutMillis, readTimeoutMillis)
                        val now = System.nanoTime()
                        mine.latencies += (now - sent) / 1e6
                        mine.ok++
                        mine.byWorker.merge(answer.id, 1L, Long::plus)
                        mine.served += Served(answer.pid, now, answer.serviceMicros)
                    } catch (e: Exception) {
                        mine.failures.merge(failureKind(e), 1L, Long::plus)
                    }
                }
            }
        }
        try {
            during(deadline)
        } finally {
            threads.forEach { it.join() }
        }
        val elapsed = (System.nanoTime() - start) / 1e9
        val failures = HashMap<String, Long>()
        val byWorker = sortedMapOf<Int, Long>()
        stats.forEach { s ->
            s.failures.forEach { (kind, n) -> failures.merge(kind, n, Long::plus) }
            s.byWorker.forEach { (id, n) -> byWorker.merge(id, n, Long::plus) }
        }
        return Result(
            ok = stats.sumOf { it.ok },
            failures = failures,
            seconds = elapsed,
            latencies = stats.flatMap { it.latencies }.sorted(),
            byWorker = byWorker,
            served = stats.flatMap { it.served },
        )
    }
}
