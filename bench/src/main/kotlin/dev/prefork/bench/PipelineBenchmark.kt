package dev.prefork.bench

import dev.prefork.Pipeline
import dev.prefork.Redirect
import dev.prefork.Subprocess

/**
 * Pipelines, prefork's [Pipeline] against `ProcessBuilder.startPipeline`, configured alike (first
 * stdin inherited, every stderr and the last stdout to /dev/null, kernel pipes between members):
 *
 * (a) start to exit of `true | true | true`, one pipeline at a time, in ms per pipeline: three
 * spawns, two pipes, three reaps;
 * (b) throughput of `head -c N /dev/zero | cat | cat > /dev/null`, in GB/s, spawn to the last
 * reap, with the same pipeline run by `sh -c` as the ceiling (no JVM at all). No byte passes
 * through a JVM in any variant, so (b) measures that nothing in the plumbing slows the
 * children (pipe sizes, blocking flags), not a copy.
 */
internal object PipelineBenchmark : Benchmark {
    override val name = "pipeline"
    override val summary = "a | b | c: start to exit of true|true|true, and head -c N /dev/zero | cat | cat, prefork vs " +
        "ProcessBuilder.startPipeline (targets: start ratio <= 0.6, throughput >= 0.95 of ProcessBuilder's)"

    private const val START_TARGET = 0.6
    private const val THROUGHPUT_TARGET = 0.95

    override fun run(settings: Settings) {
        // A pipeline is three spawns: a fifth of bench.spawns keeps a round as long as the spawn benchmark's.
        val n = maxOf(1, settings.spawns / 5)
        println("(a) start to exit of true | true | true, $n pipelines per round")
        val (ours, theirs) = settings.rounds().measure(
            listOf(
                Rounds.Variant("prefork Pipeline start+waitForExit") { perPipeline(n) { preforkTrue() } },
                Rounds.Variant("ProcessBuilder.startPipeline+waitFor") { perPipeline(n) { processBuilderTrue() } },
            ),
        )
        listOf(ours, theirs).forEach { report(it, "ms/pipeline", 3, cpuPer = n.toDouble(), cpuUnit = "ms/pipeline") }
        ratio("prefork/ProcessBuilder start to exit", ours.median / theirs.median, START_TARGET, lowerIsBetter = true)

        val bytes = settings.pipeBytes
        println("(b) head -c $bytes /dev/zero | cat | cat > /dev/null")
        val (preforkFlow, jdkFlow, shellFlow) = settings.rounds().measure(
            listOf(
                Rounds.Variant("prefork Pipeline") { gbPerSecond(bytes) { preforkThroughput(bytes) } },
                Rounds.Variant("ProcessBuilder.startPipeline") { gbPerSecond(bytes) { processBuilderThroughput(bytes) } },
                Rounds.Variant("shell: sh -c 'head | cat | cat'") { gbPerSecond(bytes) { shell(bytes) } },
            ),
        )
        listOf(preforkFlow, jdkFlow, shellFlow).forEach { report(it, "GB/s", 2, cpuPer = 1000.0, cpuUnit = "s/run") }
        println("  (prefork/shell = ${(preforkFlow.median / shellFlow.median).format(2)})")
        ratio("prefork/ProcessBuilder throughput", preforkFlow.median / jdkFlow.median, THROUGHPUT_TARGET, lowerIsBetter = false)
    }

    private inline fun perPipeline(n: Int, once: () -> Unit): Double = millis { repeat(n) { once() } } / n

    private inline fun gbPerSecond(bytes: Long, body: () -> Unit): Double = bytes / millis(body) / 1e6

    /** Every stderr to /dev/null; the last stdout too. */
    private fun prefork(commands: List<List<String>>): Pipeline {
        val members = commands.map { Subprocess.builder(it).stderr(Redirect.DEVNULL) }
        members.last().stdout(Redirect.DEVNULL)
        return Pipeline.builder(members).startDetached()
    }

    private fun processBuilder(commands: List<List<String>>): List<Process> {
        val builders = commands.map { ProcessBuilder(it).redirectError(ProcessBuilder.Redirect.DISCARD) }
        builders.first().redirectInput(ProcessBuilder.Redirect.INHERIT)
        builders.last().redirectOutput(ProcessBuilder.Redirect.DISCARD)
        return ProcessBuilder.startPipeline(builders)
    }

    private val trues = listOf(listOf("true"), listOf("true"), listOf("true"))

    private fun throughput(bytes: Long) = listOf(listOf("head", "-c", bytes.toString(), "/dev/zero"), listOf("cat"), listOf("cat"))

    /** The blocking API, as Java calls it. */
    private fun preforkTrue() = preforkRun(trues)

    private fun preforkThroughput(bytes: Long) = preforkRun(throughput(bytes))

    private fun preforkRun(commands: List<List<String>>) {
        val pipeline = prefork(commands)
        try {
            check(pipeline.waitForExitBlocking(raiseError = false) == 0 && pipeline.returnCodes.all { it == 0 }) {
                "prefork pipeline $commands: ${pipeline.returnCodes}"
            }
        } finally {
            pipeline.members.forEach { it.killIfRunning() }
        }
    }

    private fun processBuilderTrue() = processBuilderRun(trues)

    private fun processBuilderThroughput(bytes: Long) = processBuilderRun(throughput(bytes))

    private fun processBuilderRun(commands: List<List<String>>) {
        val processes = processBuilder(commands)
        try {
            val codes = processes.map { it.waitFor() }
            check(codes.all { it == 0 }) { "ProcessBuilder pipeline $commands: $codes" }
        } finally {
            processes.forEach { it.killIfRunning() }
        }
    }

    private fun shell(bytes: Long) {
        val process = ProcessBuilder("sh", "-c", "head -c $bytes /dev/zero | cat | cat > /dev/null").inheritIO().start()
        try {
            check(process.waitFor() == 0) { "shell pipeline exited ${process.exitValue()}" }
        } finally {
            process.killIfRunning()
        }
    }
}
