package dev.prefork.bench

import dev.prefork.Redirect
import dev.prefork.Subprocess
import kotlinx.coroutines.runBlocking
import java.nio.file.Files
import java.nio.file.Path

/**
 * Spawn and reap `/bin/true`, one child at a time, prefork against `ProcessBuilder`, twice:
 * with no pipes (stdin inherited, stdout and stderr to /dev/null) and with all three pipes
 * (stdin closed at once, stdout and stderr drained to end of stream). Reports milliseconds per
 * spawn and the ratio prefork / ProcessBuilder.
 *
 * The operating system's own floor takes turns with them where a C compiler is installed: the
 * same loop in C (`spawn-floor.c`: `posix_spawnp` and `waitpid`, no JVM), compiled once per
 * run. No library on the JVM can spawn faster than that loop.
 */
internal object SpawnBenchmark : Benchmark {
    override val name = "spawn"
    override val summary = "spawn + reap of /bin/true, prefork vs ProcessBuilder (target ratio <= 0.4 without pipes, <= 0.5 with three)"

    private const val PROGRAM = "/bin/true"
    private const val TARGET_NO_PIPES = 0.4
    private const val TARGET_PIPES = 0.5

    override fun run(settings: Settings) {
        val n = settings.spawns
        val mechanism = System.getProperty("jdk.lang.Process.launchMechanism") ?: "default"
        println("  $n spawns per round; ProcessBuilder launchMechanism: $mechanism")

        val floor = Files.createTempDirectory("prefork-bench-floor")
        try {
            val program = compileFloor(floor)
            if (program == null) println("  no C compiler (cc): the OS floor is not measured")

            println("(a) no pipes: stdin inherited, stdout and stderr to /dev/null")
            compare(
                settings,
                Rounds.Variant("prefork startDetached+waitForExit") { perSpawn(n) { preforkNoPipes() } },
                Rounds.Variant("ProcessBuilder start+waitFor") { perSpawn(n) { processBuilderNoPipes() } },
                program?.let { Rounds.Variant("C posix_spawnp+waitpid (no JVM)") { floorMillis(it, n, "none") } },
                TARGET_NO_PIPES,
            )

            println("(b) three pipes: stdin closed, stdout and stderr read to end of stream")
            compare(
                settings,
                Rounds.Variant("prefork STREAM x3 (suspend API)") { perSpawn(n) { preforkPipes() } },
                Rounds.Variant("ProcessBuilder default pipes") { perSpawn(n) { processBuilderPipes() } },
                program?.let { Rounds.Variant("C, three pipes (no JVM)") { floorMillis(it, n, "pipes") } },
                TARGET_PIPES,
            )
        } finally {
            floor.toFile().deleteRecursively()
        }
    }

    private fun compare(settings: Settings, prefork: Rounds.Variant, reference: Rounds.Variant, floor: Rounds.Variant?, target: Double) {
        val results = settings.rounds().measure(listOfNotNull(prefork, reference, floor))
        val (ours, theirs) = results
        results.forEach { report(it, "ms/spawn", 3, cpuPer = settings.spawns.toDouble(), cpuUnit = "ms/spawn") }
        ratio("prefork/ProcessBuilder", ours.median / theirs.median, target, lowerIsBetter = true)
        if (floor != null) {
            val c = results[2].median
            println(
                "  OS floor: the C loop takes ${(c / theirs.median).format(2)} of ProcessBuilder's time; " +
                    "prefork's own cost above it: ${(ours.median - c).format(3)} ms/spawn",
            )
        }
    }

    /** Compiles `spawn-floor.c` into [directory]; null where there is no `cc`. */
    private fun compileFloor(directory: Path): Path? {
        val source = directory.resolve("spawn-floor.c")
        checkNotNull(javaClass.getResourceAsStream("spawn-floor.c")) { "spawn-floor.c is not in the benchmark's jar" }.use { Files.copy(it, source) }
        val program = directory.resolve("spawn-floor")
        val cc = try {
            ProcessBuilder("cc", "-O2", "-o", program.toString(), source.toString()).redirectErrorStream(true).start()
        } catch (e: java.io.IOException) {
            return null
        }
        val output = cc.inputStream.bufferedReader().readText()
        check(cc.waitFor() == 0) { "cc spawn-floor.c failed:\n$output" }
        return program
    }

    /** The C loop's own figure: it times its spawns itself, without its start. */
    private fun floorMillis(program: Path, n: Int, mode: String): Double {
        val run = ProcessBuilder(program.toString(), n.toString(), mode).redirectError(ProcessBuilder.Redirect.INHERIT).start()
        try {
            val out = run.inputStream.bufferedReader().readText().trim()
            check(run.waitFor() == 0) { "spawn-floor $n $mode failed: $out" }
            return out.toDouble()
        } finally {
            run.killIfRunning()
        }
    }

    private inline fun perSpawn(n: Int, spawnOnce: () -> Unit): Double = millis { repeat(n) { spawnOnce() } } / n

    /** The blocking API, as Java calls it. */
    private fun preforkNoPipes() {
        val process = Subprocess.builder(PROGRAM)
            .stdin(Redirect.INHERIT).stdout(Redirect.DEVNULL).stderr(Redirect.DEVNULL)
            .startDetached()
        try {
            process.waitForExitBlocking()
        } finally {
            process.killIfRunning()
        }
    }

    private fun processBuilderNoPipes() {
        val process = ProcessBuilder(PROGRAM)
            .redirectInput(ProcessBuilder.Redirect.INHERIT)
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start()
        try {
            check(process.waitFor() == 0) { "$PROGRAM exited ${process.exitValue()}" }
        } finally {
            process.killIfRunning()
        }
    }

    /** The suspending API, as a Kotlin caller uses it; one runBlocking per spawn, as a blocking caller pays. */
    private fun preforkPipes() = runBlocking {
        val process = Subprocess.builder(PROGRAM)
            .stdin(Redirect.STREAM).stdout(Redirect.STREAM).stderr(Redirect.STREAM)
            .startDetached()
        try {
            process.stdin!!.close()
            process.stdout!!.readUntilClose()
            process.stderr!!.readUntilClose()
            process.waitForExit()
        } finally {
            process.killIfRunning()
        }
    }

    private fun processBuilderPipes() {
        val process = ProcessBuilder(PROGRAM).start()
        try {
            process.outputStream.close()
            process.inputStream.use { it.readAllBytes() }
            process.errorStream.use { it.readAllBytes() }
            check(process.waitFor() == 0) { "$PROGRAM exited ${process.exitValue()}" }
        } finally {
            process.killIfRunning()
        }
    }
}
