package dev.prefork.bench

/**
 * Scaling of `forkProcesses` on a CPU-bound handler: requests per second with 2 workers
 * against 1, two [ForkServer][main]s started once and loaded in turns by the same closed-loop
 * client (a fresh connection per request), so both see the same noise and the same JIT state.
 *
 * The client runs in this JVM on the same machine and takes CPU the workers could have used;
 * each round's CPU is split among workers, client, and everything else, and the ceiling that
 * split puts on the ratio is printed next to it.
 */
internal object ScalingBenchmark : Benchmark {
    override val name = "scaling"
    override val summary = "req/s of a CPU-bound handler (bench.workMillis of SHA-256), 2 workers vs 1 (target ratio >= 1.7)"

    private const val TARGET = 1.7
    private const val READ_TIMEOUT_MILLIS = 10_000

    private class Round(val result: LoadClient.Result, val cores: CpuClock.Cores)

    override fun run(settings: Settings) {
        val iterations = calibrateHashWork(settings.workMillis)
        val path = "/work?n=$iterations"
        println(
            "  handler: $iterations chained SHA-256 digests (${settings.workMillis} ms in this JVM); ${settings.clients} client " +
                "threads in this JVM, a fresh connection per request, ${settings.loadSeconds} s per round; ${CpuClock.CPUS} cpus",
        )
        ServerJvm(1, settings.serverJvmArgs).use { one ->
            ServerJvm(2, settings.serverJvmArgs).use { two ->
                val ports = listOf(one, two).associateWith { it.awaitPort() }
                one.awaitWorkers(1)
                two.awaitWorkers(2)
                val rounds = mapOf(one to mutableListOf<Round>(), two to mutableListOf())
                fun round(server: ServerJvm): Double {
                    val pids = server.liveWorkerPids()
                    val before = CpuClock.read(pids)
                    val result = LoadClient(ports.getValue(server), path, settings.clients, READ_TIMEOUT_MILLIS).run(settings.loadSeconds)
                    val cores = CpuClock.read(pids).coresSince(before, result.seconds)
                    rounds.getValue(server) += Round(result, cores)
                    return result.perSecond
                }
                val (single, double) = settings.rounds().measure(
                    listOf(Rounds.Variant("1 worker") { round(one) }, Rounds.Variant("2 workers") { round(two) }),
                )
                val measured = rounds.mapValues { it.value.takeLast(settings.rounds) }
                val summaries = listOf(single to one, double to two).map { (samples, server) ->
                    summarize(samples, measured.getValue(server))
                }
                val (cores1, cores2) = summaries
                println(
                    "  client at 2 workers: ${cores2.client.format(2)} cores = ${(100 * cores2.client / CpuClock.CPUS).format(0)}% of " +
                        "${CpuClock.CPUS} cpus, ${(1000 * cores2.client / double.median).format(3)} ms CPU per request",
                )
                // One worker can use at most 1 core; two, at most what the client leaves (and the others, as they come).
                val clientCeiling = minOf(2.0, CpuClock.CPUS - cores2.client)
                val runCeiling = minOf(2.0, CpuClock.CPUS - cores2.client - cores2.other) / cores1.workers
                println(
                    "  ceiling on the ratio: 2 workers can use at most ${CpuClock.CPUS} - client = ${clientCeiling.format(2)} cores " +
                        "against 1 core for one worker: ${clientCeiling.format(2)}; with this run's other load too, " +
                        "(${CpuClock.CPUS} - client - other at 2) / workers at 1 = ${runCeiling.format(2)}",
                )
                // An identity, rps = cores / (CPU per request), split in two: CPU the workers got, and what a request cost them.
                val coreGain = cores2.workers / cores1.workers
                val costGain = (cores1.workers / single.median) / (cores2.workers / double.median)
                println(
                    "  the ratio, decomposed: worker cores 2/1 = ${coreGain.format(2)} x worker CPU per request 1/2 = " +
                        "${costGain.format(2)} -> ${(coreGain * costGain).format(2)}",
                )
                // Rounds i of both variants ran back to back: their ratio is the least disturbed by drifting load.
                val paired = single.values.zip(double.values) { rps1, rps2 -> rps2 / rps1 }
                println("  per-round ratios: ${paired.joinToString(" ") { it.format(2) }} (median ${median(paired).format(2)})")
                ratio("rps(2)/rps(1)", double.median / single.median, TARGET, lowerIsBetter = false)
            }
        }
    }

    /** Prints one variant's line and returns its median cores. */
    private fun summarize(samples: Samples, rounds: List<Round>): CpuClock.Cores {
        val cores = CpuClock.Cores(
            machine = median(rounds.map { it.cores.machine }),
            interrupts = median(rounds.map { it.cores.interrupts }),
            client = median(rounds.map { it.cores.client }),
            workers = median(rounds.map { it.cores.workers }),
        )
        val served = rounds.flatMap { it.result.byWorker.entries }.groupBy({ it.key }, { it.value }).mapValues { it.value.sum() }
        val total = served.values.sum().toDouble()
        val failed = rounds.sumOf { it.result.failed }
        println(
            "  %-10s %8s req/s   handler %s ms, worker CPU %s ms/req   cores: %s   (rounds: %s)".format(
                samples.name,
                samples.median.format(1),
                median(rounds.map { it.result.serviceMillis }).format(2),
                (1000 * cores.workers / samples.median).format(2),
                cores,
                samples.values.joinToString(" ") { it.format(0) },
            ),
        )
        println(
            "             served by worker: ${served.entries.joinToString { "${it.key} ${(100 * it.value / total).format(0)}%" }}; " +
                "failed requests: $failed; latency ms p50 ${median(rounds.map { it.result.latency(0.5) }).format(1)}",
        )
        return cores
    }
}
