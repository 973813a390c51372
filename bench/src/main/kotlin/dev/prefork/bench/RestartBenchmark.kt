package dev.prefork.bench

import java.io.IOException
import java.util.concurrent.TimeUnit

/**
 * Restart latency of `forkProcesses`: a [ForkServer][main] with one worker; SIGKILL the worker,
 * then connect again and again (a fresh connection each time, short timeouts) until a worker
 * with a new pid answers. The supervisor keeps the shared listening socket open meanwhile, so
 * connections queue rather than fail; the time is the service gap a crash costs. A second
 * server keeps one spare (`ForkOptions.spareWorkers(1)`), warmed up, which takes over at once.
 * Both also time the replacement's first requests against the killed worker's last ones.
 *
 * The reference, in the same rounds: the wall time of a JVM that runs an empty `main` from the
 * same jar with a worker's flags, which is the floor for any restart by re-execution. The
 * worker's own timestamps split each restart into stages.
 */
internal object RestartBenchmark : Benchmark {
    override val name = "restart"
    override val summary = "kill -9 of the only worker until its replacement answers, without and with a spare, vs plain JVM start-up (targets: median <= 300 ms; <= 10 ms with a spare)"

    private const val TARGET_MILLIS = 300.0
    private const val SPARE_TARGET_MILLIS = 10.0
    private const val FIRST_REQUESTS_TARGET = 1.5
    private const val POLL_TIMEOUT_MILLIS = 100
    private const val FIRST_ANSWER_TIMEOUT_MILLIS = 10_000
    private const val GIVE_UP_SECONDS = 60L

    /** Requests timed right after the first answer, and on the warm worker before the kill. */
    private const val FIRST_REQUESTS = 10

    /**
     * Lets the new worker (and a new spare, once it said it waits) finish their start-up work
     * (JIT compilation goes on in the background after the first answers) before the next
     * round kills anything: on 2 cores, that work would slow the next restart down.
     */
    private const val SETTLE_MILLIS = 1_000L
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
        /** Mean time of the replacement's first [FIRST_REQUESTS] requests over the old worker's last ones before the kill. */
        val firstRequests: Double,
    )

    /** One fork server and what its restarts measured. */
    private class Subject(val label: String, val server: ServerJvm, val spare: Boolean) {
        val port = server.awaitPort()
        val stages = mutableListOf<Stages>()
    }

    override fun run(settings: Settings) {
        val reference = ServerJvm.jvmCommand(TRIVIAL_MAIN, emptyList(), settings.serverJvmArgs)
        println("  1 worker; after kill -9, a fresh connection per attempt (connect and read timeouts $POLL_TIMEOUT_MILLIS ms) until a new pid answers")
        println("  ${settings.kills} kills measured after ${settings.warmups} warm-ups, each server's taking turns with a reference JVM start")
        println("  three servers: without the start-up archive; with it (workers map it once trained); with it and one spare, which")
        println("  warms up on a private socket before it waits (a kill waits for it)")
        ServerJvm(1, settings.serverJvmArgs, archive = false).use { plain ->
            ServerJvm(1, settings.serverJvmArgs).use { archived ->
                ServerJvm(1, settings.serverJvmArgs, spares = 1).use { spared ->
                    val subjects = listOf(
                        Subject("restart, no archive", plain, spare = false),
                        Subject("restart, archive", archived, spare = false),
                        Subject("restart, archive, 1 spare", spared, spare = true),
                    )
                    subjects.forEach {
                        it.server.awaitWorkers(1)
                        it.server.awaitArchive()
                        if (it.spare) it.server.awaitWaitingSpare()
                        fetch(it.port, "/", FIRST_ANSWER_TIMEOUT_MILLIS, FIRST_ANSWER_TIMEOUT_MILLIS)
                    }
                    val results = Rounds(settings.warmups, settings.kills).measure(
                        subjects.map { subject -> Rounds.Variant("${subject.label}: kill -9 to new pid's answer") { restartOnce(subject) } } +
                            Rounds.Variant("reference: JVM with an empty main") { jvmStartOnce(reference) },
                    )
                    results.forEach {
                        println("  %-46s %8s ms   (rounds: %s)".format(it.name, it.median.format(1), it.values.joinToString(" ") { v -> v.format(0) }))
                    }
                    val startup = results.last()
                    subjects.zip(results).forEach { (subject, restart) -> describe(subject, restart, startup, settings) }
                    targetLine("restart, no spare", results[1].median, "ms", TARGET_MILLIS, lowerIsBetter = true)
                    targetLine("restart, 1 spare", results[2].median, "ms", SPARE_TARGET_MILLIS, lowerIsBetter = true)
                    ratio(
                        "first $FIRST_REQUESTS requests of a spare that took over / a warm worker's",
                        median(subjects[2].stages.takeLast(settings.kills).map { it.firstRequests }), FIRST_REQUESTS_TARGET, lowerIsBetter = true,
                    )
                    fun stage(subject: Subject, of: (Stages) -> Double) = median(subject.stages.takeLast(settings.kills).map(of))
                    println(
                        "  the archive: bindSockets ${stage(subjects[0]) { it.mainToBound }.format(1)} -> ${stage(subjects[1]) { it.mainToBound }.format(1)} ms, " +
                            "JVM start to forkProcesses returned ${stage(subjects[0]) { it.bootToMain + it.mainToBound + it.boundToForked }.format(1)} -> " +
                            "${stage(subjects[1]) { it.bootToMain + it.mainToBound + it.boundToForked }.format(1)} ms",
                    )
                }
            }
        }
    }

    private fun describe(subject: Subject, restart: Samples, startup: Samples, settings: Settings) {
        val measured = subject.stages.takeLast(settings.kills)
        fun stage(of: (Stages) -> Double) = median(measured.map(of)).format(1)
        println("  ${subject.label}:")
        if (subject.spare) {
            println(
                "    stages, median ms: exit seen ${stage { it.exitSeen }} | spare assigned ${stage { it.respawn }} | " +
                    "forkProcesses returned ${stage { it.boundToForked }} | server set-up ${stage { it.forkedToReady }} | " +
                    "ready to answer ${stage { it.readyToAnswer }}",
            )
        } else {
            println(
                "    stages, median ms: exit seen ${stage { it.exitSeen }} | respawn ${stage { it.respawn }} | " +
                    "JVM boot to main ${stage { it.bootToMain }} | bindSockets ${stage { it.mainToBound }} | " +
                    "forkProcesses ${stage { it.boundToForked }} | server set-up ${stage { it.forkedToReady }} | " +
                    "ready to answer ${stage { it.readyToAnswer }}",
            )
            println("    (restart/JVM start-up = ${(restart.median / startup.median).format(2)}; restart - JVM start-up = ${(restart.median - startup.median).format(1)} ms)")
        }
        println(
            "    new worker's CPU time by its first answer: median ${stage { it.workerCpu }} ms; " +
                "connection attempts per restart: median ${median(measured.map { it.polls.toDouble() }).format(0)}; " +
                "its first $FIRST_REQUESTS requests / the killed worker's last ones: median ${stage { it.firstRequests }}x",
        )
    }

    private fun restartOnce(subject: Subject): Double {
        val server = subject.server
        val port = subject.port
        val old = server.readyWorker(0) ?: error("worker 0 is not up")
        val handle = ProcessHandle.of(old.pid).orElseThrow { IllegalStateException("worker pid ${old.pid} is gone") }
        val warm = timeRequests(port)
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
        val first = timeRequests(port)
        val workerCpu = ProcessHandle.of(answer.pid).flatMap { it.info().totalCpuDuration() }.map { it.toNanos() / 1e6 }.orElse(Double.NaN)
        val up = server.awaitUp(answer.pid)
        val exited = server.awaitExited(old.pid)
        val started = server.awaitStarted(answer.pid)
        subject.stages += Stages(
            exitSeen = (exited - killedAt) / 1e3,
            respawn = (started - exited) / 1e3,
            bootToMain = (up.mainMicros - started) / 1e3,
            mainToBound = (up.boundMicros - up.mainMicros) / 1e3,
            boundToForked = (up.forkedMicros - (if (subject.spare) started else up.boundMicros)) / 1e3,
            forkedToReady = (up.readyMicros - up.forkedMicros) / 1e3,
            readyToAnswer = (answeredAt - up.readyMicros) / 1e3,
            workerCpu = workerCpu,
            polls = polls,
            firstRequests = first / warm,
        )
        if (subject.spare) server.awaitWaitingSpare()
        Thread.sleep(SETTLE_MILLIS)
        return elapsed
    }

    /** The mean time in ms of [FIRST_REQUESTS] requests in a row, each on a fresh connection. */
    private fun timeRequests(port: Int): Double =
        millis { repeat(FIRST_REQUESTS) { fetch(port, "/", FIRST_ANSWER_TIMEOUT_MILLIS, FIRST_ANSWER_TIMEOUT_MILLIS) } } / FIRST_REQUESTS

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
