package dev.prefork.bench

import java.io.File
import java.util.concurrent.TimeUnit

/** The framework samples these benchmarks run, when their jars were built. */
private val SAMPLES = listOf("spring-boot", "ktor", "jetty").map { SampleJvm.Sample(it) }

internal fun builtSamples(settings: Settings): List<SampleJvm.Sample> {
    val unknown = settings.frameworks - SAMPLES.map { it.name }.toSet()
    require(unknown.isEmpty()) { "bench.frameworks names no sample: ${unknown.joinToString(",")}; the samples: ${SAMPLES.joinToString(",") { it.name }}" }
    val chosen = SAMPLES.filter { settings.frameworks.isEmpty() || it.name in settings.frameworks }
    chosen.filter { !it.exists }.forEach { println("  ${it.name}: skipped, no ${it.jar} (build it: mvn -B -q install -DskipTests)") }
    return chosen.filter { it.exists }
}

/**
 * A framework worker's restart: one worker, SIGKILL, then fresh connections (100 ms timeouts)
 * until a new pid answers `GET /`: the service gap a crash costs, the whole framework's
 * start-up included. The reference, taking turns with it: the same jar with `--no-fork`, from
 * `java` starting to its first answer, which is that framework's own start-up on this machine.
 */
internal object FrameworkRestartBenchmark : Benchmark {
    override val name = "frameworks-restart"
    override val summary = "per framework sample: worker kill -9 until its replacement answers, vs the framework's own start-up"

    /** Lets the replacement finish its start-up (JIT, lazy initialisation) before the next round. */
    private const val SETTLE_MILLIS = 1_000L

    override fun run(settings: Settings) {
        println("  1 worker; ${settings.frameworkKills} kills after 1 warm-up, taking turns with a --no-fork start of the same jar")
        for (sample in builtSamples(settings)) {
            SampleJvm(sample, listOf("--port=0", "--workers=1"), settings.serverJvmArgs).use { server ->
                val port = server.awaitPort()
                var pid = server.awaitAnswer(port)
                val (restart, startup) = Rounds(1, settings.frameworkKills).measure(
                    listOf(
                        Rounds.Variant("restart: kill -9 to new pid's answer") {
                            val killed = pid
                            val elapsed = millis {
                                ProcessHandle.of(killed).ifPresent { it.destroyForcibly() }
                                pid = server.awaitAnswer(port, old = killed)
                            }
                            Thread.sleep(SETTLE_MILLIS)
                            elapsed
                        },
                        Rounds.Variant("reference: --no-fork start to answer") { startOnce(sample, settings) },
                    ),
                )
                println("  ${sample.name}:")
                listOf(restart, startup).forEach {
                    println("    %-38s %8s ms   (rounds: %s)".format(it.name, it.median.format(0), it.values.joinToString(" ") { v -> v.format(0) }))
                }
                println("    restart / framework start-up = ${(restart.median / startup.median).format(2)}")
            }
        }
    }

    private fun startOnce(sample: SampleJvm.Sample, settings: Settings): Double {
        val port = SampleJvm.freePort()
        var elapsed = 0.0
        val started = System.nanoTime()
        SampleJvm(sample, listOf("--no-fork", "--port=$port"), settings.serverJvmArgs).use { alone ->
            alone.awaitAnswer(port)
            elapsed = (System.nanoTime() - started) / 1e6
        }
        return elapsed
    }
}

/**
 * Scaling of a framework sample on a CPU-bound endpoint (`/cpu?n=N`, N chained SHA-256 digests
 * calibrated to `bench.frameworkWorkMillis`, 10 ms, in this JVM: long enough that the
 * framework's own work per request, a fresh connection's included, does not dominate): requests/s with 2 workers against 1, both
 * started once and loaded in turns by wrk (2 threads, 8 connections, a fresh connection per
 * request; wrk is C, and takes little of the 2 cores at these rates). Fresh connections let
 * the shared accept queue hand each request to a worker that is free; a few long-lived
 * keep-alive connections would be spread as they were accepted, possibly all to one worker.
 *
 * The target is measured with one request thread and one connection at a time per worker
 * (`--threads=1`: Tomcat's `threads.max` and `max-connections`, Ktor's `callGroupSize` and
 * `PreforkNetty.connectionLimit`, a Jetty `QoSHandler` and `NetworkConnectionLimit`), as a
 * pre-fork deployment sizes workers to cores, each accepting only what it can serve: on 2 cores a multi-threaded worker alone can already use both, so with the
 * frameworks' default pools (printed after it, for comparison) a second worker has no core
 * left to scale into.
 */
internal object FrameworkScalingBenchmark : Benchmark {
    override val name = "frameworks-scaling"
    override val summary = "per framework sample: req/s of /cpu, 2 workers vs 1 (1 request thread each; target >= 1.7), and with default threads"

    private const val TARGET = 1.7

    override fun run(settings: Settings) {
        val wrk = WRK.firstOrNull { File(it).canExecute() }
        if (wrk == null) {
            println("  skipped: wrk is not installed (Debian: apt-get install wrk)")
            return
        }
        val n = calibrateHashWork(settings.frameworkWorkMillis)
        println("  /cpu?n=$n (${settings.frameworkWorkMillis} ms in this JVM); wrk -t2 -c8 -H 'Connection: close', ${settings.loadSeconds} s per round; ${settings.warmups} warm-ups, ${settings.rounds} rounds")
        for (sample in builtSamples(settings)) {
            println("  ${sample.name}:")
            val oneThread = compare(sample, listOf("--threads=1"), wrk, n, settings)
            ratio("${sample.name} rps(2)/rps(1), 1 request thread per worker", oneThread, TARGET, lowerIsBetter = false)
            val defaults = compare(sample, emptyList(), wrk, n, settings)
            println("    rps(2)/rps(1) with the framework's default threads: ${defaults.format(2)} (no target: one worker can use both cores)")
        }
    }

    /** Runs a 1-worker and a 2-worker server with [extraArgs] in turns; the ratio of their median req/s. */
    private fun compare(sample: SampleJvm.Sample, extraArgs: List<String>, wrk: String, n: Int, settings: Settings): Double =
        SampleJvm(sample, listOf("--port=0", "--workers=1") + extraArgs, settings.serverJvmArgs).use { one ->
            SampleJvm(sample, listOf("--port=0", "--workers=2") + extraArgs, settings.serverJvmArgs).use { two ->
                val ports = listOf(one, two).map { server -> server.awaitPort().also { server.awaitAnswer(it) } }
                two.awaitAnswer(ports[1], old = two.awaitAnswer(ports[1])) // both workers up
                val (single, double) = settings.rounds().measure(
                    listOf(
                        Rounds.Variant("1 worker") { load(wrk, ports[0], n, settings.loadSeconds) },
                        Rounds.Variant("2 workers") { load(wrk, ports[1], n, settings.loadSeconds) },
                    ),
                )
                val label = extraArgs.joinToString(" ").ifEmpty { "default threads" }
                listOf(single, double).forEach {
                    println("    %-16s %-10s %8s req/s   (rounds: %s)".format(label, it.name, it.median.format(1), it.values.joinToString(" ") { v -> v.format(0) }))
                }
                double.median / single.median
            }
        }

    private fun load(wrk: String, port: Int, n: Int, seconds: Double): Double {
        val process = ProcessBuilder(wrk, "-t2", "-c8", "-d${seconds.toInt()}s", "-H", "Connection: close", "http://127.0.0.1:$port/cpu?n=$n")
            .redirectErrorStream(true).start()
        val output = process.inputStream.bufferedReader().readText()
        check(process.waitFor(seconds.toLong() + 30, TimeUnit.SECONDS)) { "wrk did not finish" }
        check(!output.contains("Non-2xx") && !output.contains("Socket errors")) { "wrk saw failures:\n$output" }
        return Regex("Requests/sec:\\s+([\\d.]+)").find(output)?.groupValues?.get(1)?.toDouble() ?: error("no Requests/sec in:\n$output")
    }
}
