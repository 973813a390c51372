package dev.prefork.bench

import dev.prefork.Redirect
import dev.prefork.Subprocess
import kotlinx.coroutines.runBlocking

/**
 * Spawn and reap `/bin/true`, one child at a time, prefork against `ProcessBuilder`, twice:
 * with no pipes (stdin inherited, stdout and stderr to /dev/null) and with all three pipes
 * (stdin closed at once, stdout and stderr drained to end of stream). Reports milliseconds per
 * spawn and the ratio prefork / ProcessBuilder.
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

        println("(a) no pipes: stdin inherited, stdout and stderr to /dev/null")
        compare(
            settings,
            Rounds.Variant("prefork startDetached+waitForExit") { perSpawn(n) { preforkNoPipes() } },
            Rounds.Variant("ProcessBuilder start+waitFor") { perSpawn(n) { processBuilderNoPipes() } },
            TARGET_NO_PIPES,
        )

        println("(b) three pipes: stdin closed, stdout and stderr read to end of stream")
        compare(
            settings,
            Rounds.Variant("prefork STREAM x3 (suspend API)") { perSpawn(n) { preforkPipes() } },
            Rounds.Variant("ProcessBuilder default pipes") { perSpawn(n) { processBuilderPipes() } },
            TARGET_PIPES,
        )
    }

    private fun compare(settings: Settings, prefork: Rounds.Variant, reference: Rounds.Variant, target: Double) {
        val (ours, theirs) = settings.rounds().measure(listOf(prefork, reference))
        report(ours, "ms/spawn", 3, cpuPer = settings.spawns.toDouble(), cpuUnit = "ms/spawn")
        report(theirs, "ms/spawn", 3, cpuPer = settings.spawns.toDouble(), cpuUnit = "ms/spawn")
        ratio("prefork/ProcessBuilder", ours.median / theirs.median, target, lowerIsBetter = true)
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
