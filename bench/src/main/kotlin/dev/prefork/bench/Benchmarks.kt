package dev.prefork.bench

import kotlin.system.exitProcess

/** One benchmark: [run] prints its own results, ending with a RATIO line against a reference measured in the same run. */
internal interface Benchmark {
    val name: String
    val summary: String
    fun run(settings: Settings)
}

/** Knobs, as system properties, so a quick check can use fewer rounds without a rebuild. */
internal class Settings(
    val warmups: Int = Integer.getInteger("bench.warmups", 2),
    val rounds: Int = Integer.getInteger("bench.rounds", 7),
    val spawns: Int = Integer.getInteger("bench.spawns", 500),
    val pipeBytes: Long = java.lang.Long.getLong("bench.pipeBytes", 1L shl 30),
    val children: Int = Integer.getInteger("bench.children", 300),
    /** restart: measured kills (after [warmups] unmeasured ones). */
    val kills: Int = Integer.getInteger("bench.kills", 15),
    /** scaling, killload: closed-loop client threads in this JVM. */
    val clients: Int = Integer.getInteger("bench.clients", 4),
    /** scaling, killload: the handler's CPU time per request, as calibrated in this JVM. */
    val workMillis: Double = System.getProperty("bench.workMillis", "2").toDouble(),
    /** scaling: load per round; killload: the no-kill reference. */
    val loadSeconds: Double = System.getProperty("bench.loadSeconds", "5").toDouble(),
    /** killload: load while a worker is killed every second. */
    val killSeconds: Double = System.getProperty("bench.killSeconds", "10").toDouble(),
    /** frameworks-scaling: the handler's CPU time per request; a framework's own per-request work must not dominate it. */
    val frameworkWorkMillis: Double = System.getProperty("bench.frameworkWorkMillis", "10").toDouble(),
    /** frameworks-throughput: each server's warm-up per load before the rounds, seconds. */
    val frameworkWarmSeconds: Double = System.getProperty("bench.frameworkWarmSeconds", "15").toDouble(),
    /** frameworks-*: the samples to run (comma-separated: spring-boot, ktor, jetty); every built one when empty. */
    val frameworks: List<String> = System.getProperty("bench.frameworks", "").split(",").map { it.trim() }.filter { it.isNotEmpty() },
    /** frameworks-throughput: the loads to run (comma-separated: light, cpu). */
    val frameworkLoads: List<String> = System.getProperty("bench.frameworkLoads", "light,cpu").split(",").map { it.trim() }.filter { it.isNotEmpty() },
    /** frameworks-restart: measured kills per framework sample (each one a framework start-up). */
    val frameworkKills: Int = Integer.getInteger("bench.frameworkKills", 5),
    /** Extra JVM flags for the fork server's supervisor and workers (and the start-up reference), space-separated. */
    val serverJvmArgs: List<String> = System.getProperty("bench.serverJvmArgs", "").split(" ").filter { it.isNotBlank() },
) {
    fun rounds(): Rounds = Rounds(warmups, rounds)

    override fun toString(): String =
        "warmups=$warmups rounds=$rounds spawns=$spawns pipeBytes=$pipeBytes children=$children kills=$kills " +
            "clients=$clients workMillis=$workMillis loadSeconds=$loadSeconds killSeconds=$killSeconds frameworkKills=$frameworkKills frameworkWorkMillis=$frameworkWorkMillis frameworkWarmSeconds=$frameworkWarmSeconds" +
            (if (frameworks.isEmpty()) "" else " frameworks=${frameworks.joinToString(",")}") +
            (if (frameworkLoads == listOf("light", "cpu")) "" else " frameworkLoads=${frameworkLoads.joinToString(",")}") +
            if (serverJvmArgs.isEmpty()) "" else " serverJvmArgs=\"${serverJvmArgs.joinToString(" ")}\""
}

private val benchmarks: List<Benchmark> =
    listOf(
        SpawnBenchmark, PipeBenchmark, PipelineBenchmark, ThreadsBenchmark, RestartBenchmark, ScalingBenchmark, KillLoadBenchmark,
        FrameworkRestartBenchmark, FrameworkScalingBenchmark, FrameworkThroughputBenchmark, StartupBenchmark, ColdStartBenchmark,
    )

/** Runs every benchmark, or those named on the command line, in the order given. */
fun main(args: Array<String>) {
    val byName = benchmarks.associateBy { it.name }
    val unknown = args.filter { it !in byName }
    if (unknown.isNotEmpty()) {
        System.err.println("unknown benchmark: ${unknown.joinToString()}")
        System.err.println("usage: java --enable-native-access=ALL-UNNAMED -jar prefork-bench.jar [${byName.keys.joinToString("|")}]...")
        benchmarks.forEach { System.err.println("  %-18s %s".format(it.name, it.summary)) }
        exitProcess(2)
    }
    val chosen = if (args.isEmpty()) benchmarks else args.map(byName::getValue)
    val settings = Settings()
    println(
        "prefork-bench: java ${System.getProperty("java.version")} (${System.getProperty("java.vm.name")}), " +
            "${Runtime.getRuntime().availableProcessors()} cpus, C binding ${System.getProperty("prefork.native") ?: "default (JNI first)"}, $settings",
    )
    for (benchmark in chosen) {
        println()
        println("== ${benchmark.name}: ${benchmark.summary}")
        benchmark.run(settings)
    }
}
