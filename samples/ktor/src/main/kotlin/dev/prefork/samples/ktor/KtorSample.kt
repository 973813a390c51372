@file:JvmName("KtorSampleKt")

package dev.prefork.samples.ktor

import dev.prefork.ForkOptions
import dev.prefork.Worker
import dev.prefork.WorkerEvent
import dev.prefork.bindSockets
import dev.prefork.cpuCount
import dev.prefork.forkProcesses
import dev.prefork.isWorker
import dev.prefork.netty.PreforkNetty
import io.ktor.http.HttpStatusCode
import io.ktor.server.application.Application
import io.ktor.server.engine.connector
import io.ktor.server.engine.embeddedServer
import io.ktor.server.netty.Netty
import io.ktor.server.response.respondText
import io.ktor.server.routing.get
import io.ktor.server.routing.routing
import kotlinx.coroutines.runBlocking
import java.net.InetSocketAddress
import java.security.MessageDigest
import kotlin.system.exitProcess

/**
 * Ktor 3 (Netty engine) as N prefork workers on one shared socket:
 *
 * ```
 * java -jar samples/ktor/target/prefork-ktor-sample.jar --port=8082 --workers=2
 * ```
 *
 * The supervisor binds the socket; every worker runs the same `embeddedServer`, whose Netty
 * server channel prefork-netty builds over that socket (Ktor's `bind` then binds nothing).
 * A worker says it is ready when Netty's bind completes. On SIGTERM (rolling restart on
 * SIGHUP, or a stop) the worker stops accepting, lets its HTTP connections finish (each
 * answer says `Connection: close`), and only then stops the engine: Ktor's own shutdown hook
 * is turned off because the engine closes every connection, requests in flight included, as
 * soon as it stops. `--no-fork` runs one plain Ktor server instead, for comparison.
 */
fun main(args: Array<String>) {
    val options = Options.parse(args)
    if (options.noFork) {
        embeddedServer(Netty, configure = {
            connector {
                host = "127.0.0.1"
                port = options.port
            }
            if (options.threads > 0) callGroupSize = options.threads
        }) { routes(null) }.start(wait = true)
        return
    }
    // prefork stops the engine once the worker drained (Worker.onDrained below).
    System.setProperty("io.ktor.server.engine.ShutdownHook", "false")
    // Bound here in the supervisor; in a worker, the same call returns the supervisor's socket.
    val socket = bindSockets(options.port, "127.0.0.1", backlog = 1024).single()
    val port = (socket.localAddress as InetSocketAddress).port
    if (!isWorker()) printHowToTry(port, options.workers) // the supervisor (spares are workers too)
    val forkOptions = ForkOptions.builder()
        .numProcesses(options.workers)
        .maxRestarts(20)
        .explicitReady(true) // ready when Netty's bind completes (prefork-netty says it)
        .spareWorkers(options.spares)
        .startupArchive(!options.noArchive)
        .cpuShare(!options.noCpuShare)
        .pinWorkers(!options.noPin)
        .listener {
            when (it) {
                is WorkerEvent.Started -> println("[supervisor] ktor worker ${it.id} started, pid ${it.pid}")
                is WorkerEvent.SpareStarted, is WorkerEvent.SpareReady -> println("[supervisor] $it")
                else -> {}
            }
        }
        .build()
    val id = runBlocking { forkProcesses(forkOptions) } // never returns in the supervisor
    val server = embeddedServer(Netty, configure = {
        connector {
            host = "127.0.0.1"
            this.port = port
        }
        configureBootstrap = {
            channelFactory(PreforkNetty.serverChannelFactory(socket))
            // T connections at once: a busy worker leaves new ones in the shared queue for a free one.
            if (options.threads > 0) handler(PreforkNetty.connectionLimit(options.threads))
        }
        channelPipelineConfig = { addAfter("codec", "prefork-drain", PreforkNetty.httpDrainHandler()) }
        if (options.threads > 0) callGroupSize = options.threads
    }) { routes(id) }
    Worker.onDrained { server.stop(1_000, 5_000) }
    server.start(wait = false)
    println("[ktor worker $id] pid ${ProcessHandle.current().pid()} serving http://127.0.0.1:$port")
    Thread.currentThread().join() // the engine's threads are daemons; SIGTERM ends the JVM
}

private fun Application.routes(id: Int?) {
    val pid = ProcessHandle.current().pid()
    val who = if (id == null) "Ktor (no fork)" else "Ktor worker $id"
    routing {
        get("/") { call.respondText("hello from $who (pid $pid)\n") }
        get("/cpu") {
            val rounds = call.request.queryParameters["n"]?.toIntOrNull() ?: DEFAULT_ROUNDS
            if (rounds !in 0..MAX_ROUNDS) {
                call.respondText("n must be a number in 0..$MAX_ROUNDS\n", status = HttpStatusCode.BadRequest)
            } else {
                val started = System.nanoTime()
                val digest = sha256Rounds(rounds)
                val millis = (System.nanoTime() - started) / 1_000_000
                call.respondText("$who (pid $pid): $rounds SHA-256 rounds in $millis ms, ${digest.take(4).joinToString("") { "%02x".format(it) }}...\n")
            }
        }
    }
}

/** [rounds] chained SHA-256 digests: one request keeps one core busy. */
private fun sha256Rounds(rounds: Int): ByteArray {
    val sha256 = MessageDigest.getInstance("SHA-256")
    var digest = ByteArray(32)
    repeat(rounds) { digest = sha256.digest(digest) }
    return digest
}

private fun printHowToTry(port: Int, workers: Int) {
    val pid = ProcessHandle.current().pid()
    val url = "http://127.0.0.1:$port"
    println("prefork + Ktor: $workers workers on $url, supervisor pid $pid")
    println("  curl $url/                    # which worker answers")
    println("  curl '$url/cpu?n=200000'      # CPU work: run several at once")
    println("  kill -HUP $pid               # rolling restart, no request lost")
    println("  Ctrl-C, or kill $pid         # graceful stop")
}

private const val DEFAULT_ROUNDS = 200_000
private const val MAX_ROUNDS = 20_000_000

/**
 * `--port=P --workers=N [--threads=T] [--spares=K] [--no-archive] [--no-cpu-share] [--no-pin] [--no-fork]`; threads 0: Ktor's
 * default; spares: `ForkOptions.spareWorkers`; no-archive: no start-up archive;
 * no-cpu-share, no-pin: `ForkOptions.cpuShare(false)`, `pinWorkers(false)`.
 */
private class Options(val port: Int, val workers: Int, val threads: Int, val spares: Int, val noArchive: Boolean, val noCpuShare: Boolean, val noPin: Boolean, val noFork: Boolean) {
    companion object {
        fun parse(args: Array<String>): Options {
            var port = 8082
            var workers = cpuCount()
            var threads = 0
            var spares = 0
            var noArchive = false
            var noCpuShare = false
            var noPin = false
            var noFork = false
            for (arg in args) {
                when {
                    arg.startsWith("--port=") -> port = arg.substringAfter('=').toIntOrNull() ?: usage("bad port: $arg")
                    arg.startsWith("--workers=") -> workers = arg.substringAfter('=').toIntOrNull() ?: usage("bad worker count: $arg")
                    arg.startsWith("--threads=") -> threads = arg.substringAfter('=').toIntOrNull() ?: usage("bad thread count: $arg")
                    arg.startsWith("--spares=") -> spares = arg.substringAfter('=').toIntOrNull() ?: usage("bad spare count: $arg")
                    arg == "--no-archive" -> noArchive = true
                    arg == "--no-cpu-share" -> noCpuShare = true
                    arg == "--no-pin" -> noPin = true
                    arg == "--no-fork" -> noFork = true
                    else -> usage("unknown argument: $arg")
                }
            }
            return Options(port, workers, threads, spares, noArchive, noCpuShare, noPin, noFork)
        }

        private fun usage(problem: String): Nothing {
            System.err.println(problem)
            System.err.println("usage: java -jar prefork-ktor-sample.jar [--port=P] [--workers=N] [--threads=T] [--spares=K] [--no-archive] [--no-cpu-share] [--no-pin] [--no-fork]")
            exitProcess(2)
        }
    }
}
