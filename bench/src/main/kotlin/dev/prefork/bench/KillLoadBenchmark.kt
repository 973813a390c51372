package dev.prefork.bench

import java.util.concurrent.TimeUnit

/**
 * What a crash costs clients: a [ForkServer][main] with 2 workers under closed-loop load, one
 * worker SIGKILLed every second (ids taking turns), failed requests counted by kind. The
 * reference, in the same run: the same load without kills.
 *
 * The target follows from the design: a worker serves one connection at a time and the
 * listening socket's accept queue is shared and held open by the supervisor, so a kill may lose
 * the one request the worker was serving, never a queued one.
 */
internal object KillLoadBenchmark : Benchmark {
    override val name = "killload"
    override val summary = "failed requests per kill -9 of a worker, 2 workers under load, a kill a second (target <= 1 per kill)"

    private const val TARGET = 1.0
    private const val WORKERS = 2
    private const val READ_TIMEOUT_MILLIS = 10_000
    private const val FIRST_REQUESTS = 10
    private val KILL_INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(1)

    override fun run(settings: Settings) {
        val iterations = calibrateHashWork(settings.workMillis)
        println(
            "  $WORKERS workers, handler $iterations SHA-256 digests (${settings.workMillis} ms); ${settings.clients} client threads, " +
                "a fresh connection per request, read timeout ${READ_TIMEOUT_MILLIS / 1000} s",
        )
        ServerJvm(WORKERS, settings.serverJvmArgs).use { server ->
            val client = LoadClient(server.awaitPort(), "/work?n=$iterations", settings.clients, READ_TIMEOUT_MILLIS)
            server.awaitWorkers(WORKERS)
            client.run(settings.loadSeconds) // warm-up: the workers' JIT
            val reference = client.run(settings.loadSeconds)
            println("  %-22s %s".format("no kills (reference)", reference))

            val original = server.liveWorkerPids().toSet()
            val exitsBefore = server.exits()
            var kills = 0
            var skipped = 0
            val underKills = client.run(settings.killSeconds) { deadline ->
                // Kills half an interval into each second, so a run of N seconds has N of them.
                var next = System.nanoTime() + KILL_INTERVAL_NANOS / 2
                var turn = 0
                while (next < deadline) {
                    TimeUnit.NANOSECONDS.sleep(next - System.nanoTime())
                    val victim = server.readyWorker(turn++ % WORKERS)
                    if (victim == null) {
                        skipped++ // its replacement from the last kill is not ready yet
                    } else {
                        ProcessHandle.of(victim.pid).ifPresent { it.destroyForcibly() }
                        kills++
                    }
                    next += KILL_INTERVAL_NANOS
                }
            }
            println("  %-22s %s".format("kill -9 every second", underKills))
            println(
                "  $kills kills, $skipped skipped (that id's replacement not ready yet); the supervisor saw " +
                    "${server.exits() - exitsBefore} exits; throughput ${(100 * underKills.perSecond / reference.perSecond).format(0)}% of the reference",
            )
            coldStart(underKills, original, reference)
            check(kills > 0) { "no worker was killed" }
            ratio("failed requests per kill", underKills.failed.toDouble() / kills, TARGET, lowerIsBetter = true)
        }
    }

    /** A replacement is a fresh JVM: its first requests run before the JIT has compiled the handler. */
    private fun coldStart(run: LoadClient.Result, original: Set<Long>, reference: LoadClient.Result) {
        val byReplacement = run.served.filter { it.pid !in original }.groupBy { it.pid }.values.map { served -> served.sortedBy { it.atNanos } }
        if (byReplacement.isEmpty()) return
        val first = byReplacement.flatMap { it.take(FIRST_REQUESTS) }.map { it.serviceMicros / 1000.0 }
        val later = byReplacement.flatMap { it.drop(FIRST_REQUESTS) }.map { it.serviceMicros / 1000.0 }
        println(
            "  handler time in the ${byReplacement.size} replacements, median ms: first $FIRST_REQUESTS requests of each " +
                "${median(first).format(2)}, later ${if (later.isEmpty()) "none" else median(later).format(2)}; " +
                "in the reference ${reference.serviceMillis.format(2)}; requests served by replacements: ${byReplacement.sumOf { it.size }} of ${run.ok}",
        )
    }
}
