package dev.prefork.bench

import java.io.IOException
import java.util.concurrent.TimeUnit

/**
 * Restart latency of `forkProcesses`: a [ForkServer][main] with one worker; SIGKILL the worker,
 * then connect again and again (a fresh connection each time, short timeouts) until a worker
 * with a new pid answers. The supervisor keeps the shared listening socket open meanwhile, so
 * connections queue rather than fail; the time is the service gap a crash costs.
 *
 * The reference, in the same rounds: the wall time of a JVM that runs an empty `main` from the
 * same jar with a worker's flags, which is the floor for any restart by re-execution. The
 * worker's own timestamps split each restart into stages.
 */
internal object RestartBenchmark : Benchmark {
    override val name = "restart"
    override val summary = "kill -9 of the only worker until its replacement answers, vs plain JVM start-up (target median <= 300 ms)"

    private const val TARGET_MILLIS = 300.0
    private const val POLL_TIMEOUT_MILLIS = 100
    private const val FIRST_ANSWER_TIMEOUT_MILLIS = 10_000
    private const val GIVE_UP_SECONDS = 60L

    /** Lets the new worker finish its start-up work (JIT, class loading) before the next round's JVM starts. */
    private const val SETTLE_MILLIS = 500L
    private const val TRIVIAL_MAIN = "dev.prefork.bench.TrivialMainKt"

    /** One restart's stages, in milliseconds, from the worker's and the supervisor's timestamps. */
    private class Stages(
        val exitSeen: Double,
        val respawn: Double,
        val bootToMain: Double,
        val mainToBound: Double,
        val boundToForked: Double,
        val forkedToReady: Double,
        val readyToAnswer: Double,
        val workerCpu: Double,
        val polls: Int,
    )

    override fun run(settings: Settings) {
        val reference = ServerJvm.jvmCommand(TRIVIAL_MAIN, emptyList(), settings.serverJvmArgs, asWorker = true)
        println("  1 worker; after kill -9, a fresh connection per attempt (connect and read timeouts $POLL_TIMEOUT_MILLIS ms) until a new pid answers")
        println("  ${settings.kills} kills measured after ${settings.warmups} warm-ups, taking turns with a reference JVM start")
        ServerJvm(1, settings.serverJvmArgs).use { server ->
            val port = server.awaitPort()
            server.awaitWorkers(1)
            fetch(port, "/", FIRST_ANSWER_TIMEOUT_MILLIS, FIRST_ANSWER_TIMEOUT_MILLIS)
            val stages = mutableListOf<Stages>()
            val (restart, startup) = Rounds(settings.warmups, settings.kills).measure(
                listOf(
                    Rounds.Variant("restart: kill -9 to new pid's answer") { restartOnce(server, port, stages) },
                    Rounds.Variant("reference: JVM with an empty main") { jvmStartOnce(reference) },
                ),
            )
            listOf(restart, startup).forEach {
                println("  %-38s %8s ms   (rounds: %s)".format(it.name, it.median.format(1), it.values.joinToString(" ") { v -> v.format(0) }))
            }
            val measured = stages.takeLast(settings.kills)
            fun stage(of: (Stages) -> Double) = median(measured.map(of)).format(1)
            println(
                "  stages, median ms: exit seen ${stage { it.exitSeen }} | respawn ${stage { it.respawn }} | " +
                    "JVM boot to main ${stage { it.bootToMain }} | bindSockets ${stage { it.mainToBound }} | " +
                    "forkProcesses ${stage { it.boundToForked }} | server set-up ${stage { it.forkedToReady }} | " +
                    "ready to answer ${stage { it.readyToAnswer }}",
            )
            println(
                "  new worker's CPU time by its first answer: median ${stage { it.workerCpu }} ms; " +
                    "connection attempts per restart: median ${median(measured.map { it.polls.toDouble() }).format(0)}",
            )
            println(
                "  (restart/JVM start-up = ${(restart.median / startup.median).format(2)}; " +
                    "restart - JVM start-up = ${(restart.median - startup.median).format(1)} ms)",
            )
            targetLine("restart", restart.median, "ms", TARGET_MILLIS, lowerIsBetter = true)
        }
    }

    private fun restartOnce(server: ServerJvm, port: Int, stages: MutableList<Stages>): Double {
        val old = server.readyWorker(0) ?: error("worker 0 is not up")
        val handle = ProcessHandle.of(old.pid).orElseThrow { IllegalStateException("worker pid ${old.pid} is gone") }
        val killedAt = epochMicros()
        val start = System.nanoTime()
        handle.destroyForcibly()
        var polls = 0
        var answer: Answer? = null
        while (answer == null) {
            check(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(GIVE_UP_SECONDS)) { "no new worker answered within ${GIVE_UP_SECONDS}s" }
            polls++
            answer = try {
                fetch(port, "/", POLL_TIMEOUT_MILLIS, POLL_TIMEOUT_MILLIS).takeIf { it.pid != old.pid }
            } catch (e: IOException) {
                null // refused, reset, or no answer in time: the next attempt queues behind it
            }
        }
        val elapsed = (System.nanoTime() - start) / 1e6
        val answeredAt = epochMicros()
        val workerCpu = ProcessHandle.of(answer.pid).flatMap { it.info().totalCpuDuration() }.map { it.toNanos() / 1e6 }.orElse(Double.NaN)
        val up = server.awaitUp(answer.pid)
        val exited = server.awaitExited(old.pid)
        val started = server.awaitStarted(answer.pid)
        stages += Stages(
            exitSeen = (exited - killedAt) / 1e3,
            respawn = (started - exited) / 1e3,
            bootToMain = (up.mainMicros - started) / 1e3,
            mainToBound = (up.boundMicros - up.mainMicros) / 1e3,
            boundToForked = (up.forkedMicros - up.boundMicros) / 1e3,
            forkedToReady = (up.readyMicros - up.forkedMicros) / 1e3,
            readyToAnswer = (answeredAt - up.readyMicros) / 1e3,
            workerCpu = workerCpu,
            polls = polls,
        )
        Thread.sleep(SETTLE_MILLIS)
        return elapsed
    }

    private fun jvmStartOnce(command: List<String>): Double {
        var process: Process? = null
        try {
            return millis {
                process = ProcessBuilder(command)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .redirectError(ProcessBuilder.Redirect.INHERIT)
                    .start()
                check(process!!.waitFor() == 0) { "$command exited ${process!!.exitValue()}" }
            }
        } finally {
            process?.killIfRunning()
        }
    }
}
