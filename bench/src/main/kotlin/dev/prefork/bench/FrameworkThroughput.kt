package dev.prefork.bench

import java.io.File
import java.util.concurrent.TimeUnit

/**
 * What adding prefork does to a multi-threaded server's throughput on this machine: each
 * framework sample as one plain JVM (`--no-fork`, the user's starting point) against N workers
 * (N = this machine's CPUs) at default options, and with each of the options that size and
 * place the workers turned off (`--no-pin`: `pinWorkers(false)`; `--no-cpu-share`:
 * `cpuShare(false)`; both: every worker sizes itself for the whole machine, as before they
 * existed). All five servers run at once and are loaded in turns by wrk, which runs on the same
 * machine: the CPU wrk itself used is printed, as the share of the machine the servers did not
 * have.
 *
 * Two loads: light requests (`GET /`, 16 keep-alive connections, as a user's first wrk run
 * would be), and CPU-bound ones (`/cpu?n=N`, calibrated to `bench.frameworkWorkMillis` in this
 * JVM, 8 connections with a fresh connection per request, so that the shared accept queue
 * hands each request to a worker that is free). Each server gets `bench.frameworkWarmSeconds`
 * of each load before the rounds: a JVM's JIT takes that long to settle, and N workers have N
 * JITs to settle.
 */
internal object FrameworkThroughputBenchmark : Benchmark {
    override val name = "frameworks-throughput"
    override val summary = "per framework sample: req/s of N workers (N = cpus) vs 1 plain JVM, light and CPU-bound, each sizing option on and off (target >= 1.0)"

    private const val TARGET = 1.0

    private class Config(val label: String, val args: List<String>)

    private class Load(val label: String, val path: String, val wrkArgs: List<String>)

    override fun run(settings: Settings) {
        val wrk = WRK.firstOrNull { File(it).canExecute() }
        if (wrk == null) {
            println("  skipped: wrk is not installed (Debian: apt-get install wrk)")
            return
        }
        val workers = CpuClock.CPUS
        val n = calibrateHashWork(settings.frameworkWorkMillis)
        val configs = listOf(
            Config("1 JVM (--no-fork)", listOf("--no-fork")),
            Config("$workers workers, defaults", listOf("--workers=$workers")),
            Config("$workers workers, --no-pin", listOf("--workers=$workers", "--no-pin")),
            Config("$workers workers, --no-cpu-share", listOf("--workers=$workers", "--no-cpu-share")),
            Config("$workers workers, neither", listOf("--workers=$workers", "--no-cpu-share", "--no-pin")),
        )
        val known = mapOf(
            "light" to Load("light: GET /, keep-alive", "/", listOf("-t2", "-c16")),
            "cpu" to Load("CPU-bound: /cpu?n=$n (${settings.frameworkWorkMillis} ms), a connection per request", "/cpu?n=$n", listOf("-t2", "-c8", "-H", "Connection: close")),
        )
        val loads = settings.frameworkLoads.map {
            requireNotNull(known[it]) { "bench.frameworkLoads names no load: $it; the loads: ${known.keys.joinToString(",")}" }
        }
        println(
            "  $workers cpus; wrk on the same machine; ${settings.frameworkWarmSeconds} s of each load per server first, then " +
                "${settings.rounds} rounds of ${settings.loadSeconds} s per server and load, the servers taking turns; load average ${loadAverage()}",
        )
        for (sample in builtSamples(settings)) {
            println("  ${sample.name}:")
            // A plain JVM does not print its port: it is given one.
            val fixedPorts = configs.map { if ("--no-fork" in it.args) SampleJvm.freePort() else null }
            val servers = configs.mapIndexed { i, config -> SampleJvm(sample, listOf("--port=${fixedPorts[i] ?: 0}") + config.args, settings.serverJvmArgs) }
            try {
                val ports = servers.mapIndexed { i, server ->
                    server.awaitPort(fixedPorts[i]).also { port ->
                        val first = server.awaitAnswer(port)
                        if (server !== servers[0] && workers > 1) server.awaitAnswer(port, old = first) // a second worker answers too
                    }
                }
                for (load in loads) {
                    ports.forEach { wrk(wrk, it, load, settings.frameworkWarmSeconds) }
                    val rounds = Rounds(0, settings.rounds)
                    val wrkCores = configs.associateWith { mutableListOf<Double>() }
                    val samples = rounds.measure(
                        configs.mapIndexed { i, config ->
                            Rounds.Variant(config.label) {
                                val result = wrk(wrk, ports[i], load, settings.loadSeconds)
                                wrkCores.getValue(config) += result.second
                                result.first
                            }
                        },
                    )
                    println("    ${load.label}:")
                    val plain = samples[0].median
                    samples.forEachIndexed { i, s ->
                        println(
                            "      %-30s %9s req/s  %5sx   wrk used %s cores   (rounds: %s)".format(
                                s.name, s.median.format(0), (s.median / plain).format(2),
                                median(wrkCores.getValue(configs[i])).format(2), s.values.joinToString(" ") { it.format(0) },
                            ),
                        )
                    }
                    ratio("${sample.name}, ${load.label.substringBefore(':')}: $workers workers / 1 JVM", samples[1].median / plain, TARGET, lowerIsBetter = false)
                }
            } finally {
                servers.forEach(SampleJvm::close)
            }
        }
    }

    /** One wrk run of [seconds]: its requests/s, and the cores wrk itself used meanwhile. */
    private fun wrk(wrk: String, port: Int, load: Load, seconds: Double): Pair<Double, Double> {
        val before = childrenCpuSeconds()
        val started = System.nanoTime()
        val process = ProcessBuilder(listOf(wrk) + load.wrkArgs + listOf("-d${seconds.toInt()}s", "http://127.0.0.1:$port${load.path}"))
            .redirectErrorStream(true).start()
        val output = process.inputStream.bufferedReader().readText()
        check(process.waitFor(seconds.toLong() + 30, TimeUnit.SECONDS)) { "wrk did not finish" }
        val wall = (System.nanoTime() - started) / 1e9
        check(!output.contains("Non-2xx") && !output.contains("Socket errors")) { "wrk saw failures:\n$output" }
        val rps = Regex("Requests/sec:\\s+([\\d.]+)").find(output)?.groupValues?.get(1)?.toDouble() ?: error("no Requests/sec in:\n$output")
        return rps to (childrenCpuSeconds() - before) / wall
    }

    /** User and system time of this JVM's children that were waited for (`cutime`, `cstime`): wrk's, once it is reaped. */
    private fun childrenCpuSeconds(): Double {
        val stat = File("/proc/self/stat").readText()
        val fields = stat.substring(stat.lastIndexOf(')') + 2).split(' ')
        // After the command's name: state is field 3, cutime and cstime are fields 16 and 17.
        return (fields[16 - 3].toLong() + fields[17 - 3].toLong()) / 100.0
    }

    private fun loadAverage(): String = File("/proc/loadavg").readText().split(' ').take(3).joinToString(" ")
}

internal val WRK = listOf("/usr/bin/wrk", "/usr/local/bin/wrk")
