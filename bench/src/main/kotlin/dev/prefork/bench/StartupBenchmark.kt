package dev.prefork.bench

import java.io.File
import java.nio.file.Files

/**
 * A worker JVM's start, from its spawn to `forkProcesses`, for each framework sample, with and
 * without the start-up archive, and what an additional worker costs in memory.
 *
 * Each sample runs twice at once, `--workers=1 --spares=1`, once with `--no-archive`. A round
 * kills the waiting spare of one of them; the supervisor starts another a second later, and the
 * time from its `spare (pid P) started` line to its `spare (pid P) waiting` line (the spare
 * reached `forkProcesses`, which in a worker returns its id) is the start measured: the same
 * path a worker runs, without what the framework does after `forkProcesses`. The archive is
 * kept in a directory of this run's own (`java.io.tmpdir` of the sample), trained before the
 * first round. Memory: the proportional set size (PSS, shared pages divided among the processes
 * that map them) and the private memory of a waiting spare, from `/proc/<pid>/smaps_rollup`.
 */
internal object StartupBenchmark : Benchmark {
    override val name = "startup"
    override val summary = "per framework sample: worker JVM start to forkProcesses and its memory, with and without the start-up archive (target >= 1.5x faster)"

    private const val TARGET = 1.5
    private val STARTED = Regex("spare \\(pid (\\d+)\\) started")
    private val WAITING = Regex("spare \\(pid (\\d+)\\) waiting")

    /** One sample server and where its line count stood after the last round. */
    private class Server(val jvm: SampleJvm) {
        var seen = 0
        var spare: Long = 0
    }

    override fun run(settings: Settings) {
        val samples = listOf("spring-boot", "ktor", "jetty").map { SampleJvm.Sample(it) }
        println("  1 worker and 1 spare per server; the spare killed each round (${settings.warmups} warm-ups, ${settings.rounds} rounds)")
        val extracted = Files.createTempDirectory("prefork-bench-extracted")
        try {
            for (sample in samples + listOfNotNull(extract(samples[0], extracted))) measure(sample, settings)
        } finally {
            extracted.toFile().deleteRecursively()
        }
    }

    /**
     * Spring Boot's own layout for CDS (`java -Djarmode=tools -jar app.jar extract`): the
     * application jar with its libraries beside it as plain jars, which the JVM's class loader
     * reads and CDS archives directly, instead of jars nested in the fat jar.
     */
    private fun extract(sample: SampleJvm.Sample, into: java.nio.file.Path): SampleJvm.Sample? {
        if (!sample.exists) return null
        val java = java.nio.file.Path.of(System.getProperty("java.home"), "bin", "java").toString()
        val process = ProcessBuilder(java, "-Djarmode=tools", "-jar", sample.jar.toString(), "extract", "--destination", into.toString())
            .redirectErrorStream(true).start()
        val output = process.inputStream.bufferedReader().readText()
        check(process.waitFor() == 0) { "extracting ${sample.jar} failed:\n$output" }
        return SampleJvm.Sample("${sample.name} (extracted)", into.resolve(sample.jar.fileName))
    }

    private fun measure(sample: SampleJvm.Sample, settings: Settings) {
        run {
            if (!sample.exists) {
                println("  ${sample.name}: skipped, no ${sample.jar} (build it: mvn -B -q install -DskipTests)")
                return
            }
            val tmp = Files.createTempDirectory("prefork-bench-archive")
            val jvmArgs = settings.serverJvmArgs + "-Djava.io.tmpdir=$tmp"
            try {
                SampleJvm(sample, listOf("--port=0", "--workers=1", "--spares=1", "--no-archive"), jvmArgs).use { plain ->
                    SampleJvm(sample, listOf("--port=0", "--workers=1", "--spares=1"), jvmArgs).use { archived ->
                        val servers = listOf(Server(plain), Server(archived))
                        archived.awaitLine(Regex("start-up archive \\S+ (made in|: workers map it)|start-up archive: off"))
                        servers.forEach { it.spare = waitingSpare(it) }
                        val (without, with) = settings.rounds().measure(
                            servers.map { server -> Rounds.Variant(if (server.jvm === plain) "no archive" else "archive") { respawn(server) } },
                        )
                        println("  ${sample.name}:")
                        listOf(without, with).forEach {
                            println("    %-12s spare start to forkProcesses %7s ms   (rounds: %s)".format(it.name, it.median.format(1), it.values.joinToString(" ") { v -> v.format(0) }))
                        }
                        ratio("${sample.name} start to forkProcesses, without / with the archive", without.median / with.median, TARGET, lowerIsBetter = false)
                        servers.forEach { server ->
                            val memory = memory(server.spare)
                            println("    ${if (server.jvm === plain) "no archive" else "archive   "}  waiting spare: PSS ${memory.first / 1024} MiB, private ${memory.second / 1024} MiB")
                        }
                    }
                }
            } finally {
                tmp.toFile().deleteRecursively()
            }
        }
    }

    /** The pid of the spare that is waiting now, from the lines after the last round's. */
    private fun waitingSpare(server: Server): Long {
        val (match, _, index) = server.jvm.awaitLine(WAITING, server.seen)
        server.seen = index + 1
        return match.groupValues[1].toLong()
    }

    /** Kills the waiting spare; the time its replacement took from its start to its wait. */
    private fun respawn(server: Server): Double {
        val from = server.jvm.lines()
        ProcessHandle.of(server.spare).ifPresent { it.destroyForcibly() }
        val (started, startedAt, i) = server.jvm.awaitLine(STARTED, from)
        val pid = started.groupValues[1].toLong()
        var (waiting, waitingAt, j) = server.jvm.awaitLine(WAITING, i + 1)
        while (waiting.groupValues[1].toLong() != pid) {
            val next = server.jvm.awaitLine(WAITING, j + 1)
            waiting = next.first
            waitingAt = next.second
            j = next.third
        }
        server.spare = pid
        server.seen = j + 1
        Thread.sleep(SETTLE_MILLIS)
        return (waitingAt - startedAt) / 1e6
    }

    /** PSS and private memory of [pid], in KiB. */
    private fun memory(pid: Long): Pair<Long, Long> {
        val fields = File("/proc/$pid/smaps_rollup").readLines().associate { line ->
            val parts = line.split(Regex("\\s+"))
            parts[0].removeSuffix(":") to (parts.getOrNull(1)?.toLongOrNull() ?: 0)
        }
        return fields.getValue("Pss") to (fields.getValue("Private_Clean") + fields.getValue("Private_Dirty"))
    }

    /** Lets the spare finish what it does after it reached forkProcesses before the next round. */
    private const val SETTLE_MILLIS = 1_000L
}
