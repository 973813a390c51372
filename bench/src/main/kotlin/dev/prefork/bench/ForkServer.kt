package dev.prefork.bench

import dev.prefork.ForkOptions
import dev.prefork.Prefork
import dev.prefork.WorkerEvent
import dev.prefork.Worker
import dev.prefork.WorkerListener
import dev.prefork.bindSockets
import dev.prefork.isWorker
import java.io.IOException
import java.net.InetSocketAddress
import java.nio.ByteBuffer
import java.nio.channels.ServerSocketChannel
import java.nio.channels.SocketChannel
import java.nio.file.Files
import java.nio.file.Path
import java.time.Instant
import kotlin.system.exitProcess

/**
 * The server the fork benchmarks run in a fresh JVM:
 * `ForkServerKt <run-token> <numProcesses> [spares] [archive|no-archive]`.
 * The token is unused here; it marks every process of one benchmark run (the supervisor
 * re-executes this command line for each worker), so the benchmark can find and kill them all.
 *
 * One socket on 127.0.0.1 is bound before the fork, then each worker serves HTTP/1.0 on one
 * thread, one connection at a time, as a Tornado worker does: `GET /` answers `<id> <pid> 0 0`,
 * `GET /work?n=K` computes K chained SHA-256 digests first and answers `<id> <pid> <micros> <byte>`
 * (the handler's own time, and a byte of the result). Lines on stdout (which every worker inherits), timestamps in
 * microseconds since the epoch, so the benchmark can place them against its own clock:
 *
 * - supervisor: `port <port>`, `event <kind> <id> <pid> at <t>` for every listener event
 *   (`started`, `ready`, `exited`, `spare-started`, `spare-ready`, `spare-exited`; a spare's id is -1);
 * - worker: `worker <id> pid <pid> main <t> bound <t> forked <t> ready <t>` (entering `main`;
 *   `bindSockets` returned; `forkProcesses` returned; about to accept);
 * - spare: `spare <pid> waiting at <t>` once it has warmed up (served requests on a private
 *   socket until the JIT compiled the request path) and is about to wait in `forkProcesses`.
 */
fun main(args: Array<String>) {
    val entered = epochMicros()
    require(args.size in 2..4) { "usage: ForkServerKt <run-token> <numProcesses> [spares] [archive|no-archive]" }
    val socket = bindSockets(0, "127.0.0.1", backlog = BACKLOG)[0]
    val bound = epochMicros()
    if (!isWorker()) {
        exitWithBenchmark()
        say("port", (socket.localAddress as InetSocketAddress).port)
    }
    if (Worker.isSpare()) {
        warmUp()
        say("spare", ownPid(), "waiting", "at", epochMicros())
    }
    val options = ForkOptions.builder()
        .numProcesses(args[1].toInt())
        .spareWorkers(if (args.size > 2) args[2].toInt() else 0)
        .startupArchive(args.size < 4 || args[3] != "no-archive")
        .maxRestarts(MAX_RESTARTS)
        .listener(Announcer)
        .build()
    val id = Prefork.forkProcesses(options)
    val forked = epochMicros()
    val pid = ownPid()
    say("worker", id, "pid", pid, "main", entered, "bound", bound, "forked", forked, "ready", epochMicros())
    serve(socket, StringBuilder().append(id).append(' ').append(pid).toString())
}

/*
 * What a worker runs after forkProcesses returns counts in the restart benchmark as if it were
 * prefork's, so this file stays clear of what is slow the first time in a fresh JVM: string
 * templates and lambdas (Kotlin compiles both to invokedynamic, whose first call spins method
 * handles for milliseconds), the Socket adaptor of a channel, ProcessHandle (its class sets up
 * the JDK's process reaper), and MessageDigest unless asked for.
 */

/** The benchmark kills workers by the dozen; the budget only guards against a crash loop. */
private const val MAX_RESTARTS = 100_000
private const val BACKLOG = 512
private const val REQUEST_HEAD_LIMIT = 1024

/** A spare's warm-up: enough requests for the JIT to compile the request path (C2 after about 10,000 calls). */
private const val WARM_UP_REQUESTS = 20_000
private val HEAD_END = "\r\n\r\n".toByteArray()

/** The supervisor's side of the lines: each listener event, with a timestamp. */
private object Announcer : WorkerListener {
    override fun onEvent(event: WorkerEvent) {
        val kind = when (event) {
            is WorkerEvent.Started -> "started"
            is WorkerEvent.Ready -> "ready"
            is WorkerEvent.Exited -> "exited"
            is WorkerEvent.SpareStarted -> "spare-started"
            is WorkerEvent.SpareReady -> "spare-ready"
            is WorkerEvent.SpareExited -> "spare-exited"
            is WorkerEvent.Added -> "added"
            is WorkerEvent.Removed -> "removed"
            is WorkerEvent.TimedOut -> "timed-out"
            is WorkerEvent.Recycled -> "recycled"
        }
        say("event", kind, event.id, event.pid, "at", epochMicros())
    }
}

/**
 * One connection at a time: accept, read the request, answer, close, until [listener] is
 * closed. No read timeout: the benchmark's clients send their request as soon as they
 * connect, or close.
 */
private fun serve(listener: ServerSocketChannel, whoAmI: String) {
    val head = ByteBuffer.allocate(REQUEST_HEAD_LIMIT)
    while (listener.isOpen) {
        try {
            listener.accept().use { connection -> answer(connection, head, whoAmI) }
        } catch (e: IOException) {
            // The client reset or went away; the next one is waiting. Or the listener closed.
        }
    }
}

private fun answer(connection: SocketChannel, head: ByteBuffer, whoAmI: String) {
    head.clear()
    val path = readRequestPath(connection, head) ?: return // a client that gave up
    val iterations = path.substringAfter("/work?n=", "0").toInt()
    val start = System.nanoTime()
    val hash = if (iterations == 0) 0 else hashWork(iterations)
    val micros = (System.nanoTime() - start) / 1000
    val body = StringBuilder().append(whoAmI).append(' ').append(micros).append(' ').append(hash).toString()
    val response = StringBuilder("HTTP/1.0 200 OK\r\nContent-Length: ").append(body.length)
        .append("\r\n\r\n").append(body).toString()
    val out = ByteBuffer.wrap(response.toByteArray(Charsets.ISO_8859_1))
    while (out.hasRemaining()) connection.write(out)
}

/**
 * What a spare does while it waits for an id: serves [WARM_UP_REQUESTS] requests, each on a
 * fresh connection as the benchmark sends them, on a private socket of its own (never the
 * shared one), so that a spare that takes over answers as fast as a warm worker; then a GC gives
 * the heap the warm-up grew back to the system.
 */
private fun warmUp() {
    val private = ServerSocketChannel.open().bind(InetSocketAddress("127.0.0.1", 0))
    val target = private.localAddress
    val server = Thread { serve(private, "0 0") }
    server.start()
    val request = "GET / HTTP/1.0\r\n\r\n".toByteArray(Charsets.ISO_8859_1)
    val response = ByteBuffer.allocate(REQUEST_HEAD_LIMIT)
    for (i in 0 until WARM_UP_REQUESTS) {
        SocketChannel.open(target).use { client ->
            val out = ByteBuffer.wrap(request)
            while (out.hasRemaining()) client.write(out)
            response.clear()
            while (client.read(response) >= 0) response.clear()
        }
    }
    private.close()
    server.join()
    // The warm-up's garbage would stay in the heap, and a JVM's kill -9 takes the kernel longer the more memory it holds.
    System.gc()
}

/** The path of `GET <path> HTTP/1.0`, read up to the blank line into [head]; null at end of stream. */
private fun readRequestPath(connection: SocketChannel, head: ByteBuffer): String? {
    while (head.hasRemaining()) {
        if (connection.read(head) < 0) return null
        if (endsHead(head)) {
            val text = String(head.array(), 0, head.position(), Charsets.ISO_8859_1)
            return text.substringBefore("\r\n").split(" ")[1]
        }
    }
    throw IOException("request head over $REQUEST_HEAD_LIMIT bytes")
}

private fun endsHead(head: ByteBuffer): Boolean {
    val end = head.position()
    if (end < HEAD_END.size) return false
    for (i in HEAD_END.indices) if (head.get(end - HEAD_END.size + i) != HEAD_END[i]) return false
    return true
}

/**
 * The supervisor exits when the benchmark does, however it ends (even by SIGKILL, when its
 * finally blocks cannot run): the benchmark holds the only write end of this process's stdin.
 * The workers then exit too, as prefork's workers do when their supervisor is gone.
 */
private fun exitWithBenchmark() {
    val watch = Thread {
        try {
            while (System.`in`.read() >= 0) { /* the benchmark never writes; only end-of-file matters */ }
        } catch (e: IOException) {
            // as end-of-file
        }
        exitProcess(1)
    }
    watch.isDaemon = true
    watch.start()
}

/** This process's pid, from the `/proc/self` link. */
private fun ownPid(): Long = Files.readSymbolicLink(Path.of("/proc/self")).toString().toLong()

/** One write per line: workers share this stdout, and a pipe write this short is never interleaved. */
private fun say(vararg words: Any) {
    val line = StringBuilder()
    for (word in words) line.append(word).append(' ')
    line.setCharAt(line.length - 1, '\n')
    System.out.write(line.toString().toByteArray())
    System.out.flush()
}

internal fun epochMicros(): Long = Instant.now().let { it.epochSecond * 1_000_000 + it.nano / 1000 }
