package dev.prefork

import dev.prefork.posix.Affinity
import dev.prefork.supervisor.WorkerCpus
import dev.prefork.testing.FixtureJvm
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import java.io.File
import java.nio.file.Files
import kotlin.time.Duration.Companion.seconds

private const val FIXTURE = "dev.prefork.fixtures.CpuShareFixtureKt"
private const val SIGTTIN = 21

/** Each worker sized for its share of the CPUs and placed on CPUs of its own, every thread included. */
class CpuShareTest : FunSpec({
    val processors = Runtime.getRuntime().availableProcessors()
    val plan = WorkerCpus(processors, Affinity.of(), tellProcessors = true)
    val everyCpu = WorkerCpus.ranges(Affinity.of())

    /** On one CPU, every variant gives every worker the same: nothing to tell apart. */
    val several = processors >= 2 && Affinity.of().size >= 2

    class Seen(val processors: Int, val flags: Int, val cpus: String)

    /** Each worker's line, by id. */
    fun FixtureJvm.workers(n: Int): Map<Int, Seen> = (0 until n).associate {
        awaitLine(Regex("worker (\\d+) pid \\d+ processors=(\\d+) flags=(\\d+) cpus=(\\S+)")).destructured.let { (id, count, flags, cpus) ->
            id.toInt() to Seen(count.toInt(), flags.toInt(), cpus)
        }
    }

    test("by default, worker i of 2 is told its share of the processors and runs, every thread of it, on its slice of the CPUs").config(enabled = several) {
        FixtureJvm(FIXTURE, listOf("2", "true", "true", "0")).use { f ->
            val seen = f.workers(2)
            f.exitCode(60) shouldBe 0
            for (id in 0 until 2) {
                seen.getValue(id).processors shouldBe plan.processorsFor(id, 2)
                seen.getValue(id).flags shouldBe 1
                seen.getValue(id).cpus shouldBe WorkerCpus.ranges(plan.coresFor(id, 2)!!)
            }
            f.stderr() shouldContain "each of 2 workers is told"
        }
    }

    test("with both options off, every worker sees and runs on what the supervisor has").config(enabled = several) {
        FixtureJvm(FIXTURE, listOf("2", "false", "false", "0")).use { f ->
            val seen = f.workers(2)
            f.exitCode(60) shouldBe 0
            seen.values.map { Triple(it.processors, it.flags, it.cpus) }.toSet() shouldBe setOf(Triple(processors, 0, everyCpu))
        }
    }

    test("a processor count set on the command line is the user's: no flag is added, pinning still applies").config(enabled = several) {
        FixtureJvm(FIXTURE, listOf("2", "true", "true", "0"), jvmFlags = listOf("-XX:ActiveProcessorCount=3")).use { f ->
            val seen = f.workers(2)
            f.exitCode(60) shouldBe 0
            for (id in 0 until 2) {
                seen.getValue(id).processors shouldBe 3
                seen.getValue(id).flags shouldBe 1 // the user's alone
                seen.getValue(id).cpus shouldBe WorkerCpus.ranges(WorkerCpus(3, Affinity.of(), true).coresFor(id, 2)!!)
            }
        }
    }

    test("a spare gets the smallest share, and the CPUs of the id it takes over once it is ready").config(enabled = several) {
        val markers = Files.createTempDirectory("cpu-share")
        try {
            FixtureJvm(FIXTURE, listOf("2", "true", "true", "1"), environment = mapOf("CPU_SHARE_MARKERS" to markers.toString())).use { f ->
                val seen = f.workers(2)
                f.exitCode(90) shouldBe 0
                val takenOver = Regex("event child (\\d) \\(pid \\d+\\) started \\(a spare took over\\)").findAll(f.stdout()).map { it.groupValues[1].toInt() }.toSet()
                takenOver.isEmpty() shouldBe false
                for (id in 0 until 2) seen.getValue(id).cpus shouldBe WorkerCpus.ranges(plan.coresFor(id, 2)!!)
                for (id in takenOver) seen.getValue(id).processors shouldBe plan.processorsFor(null, 2)
            }
        } finally {
            markers.toFile().deleteRecursively()
        }
    }

    test("SIGTTIN moves the workers that were running to their slice of the CPUs for the new count").config(enabled = several) {
        FixtureJvm("dev.prefork.fixtures.ForkFixtureKt", listOf("serve", "1")).use { f ->
            val pid = f.awaitLine(Regex("worker 0 pid (\\d+)")).groupValues[1].toLong()
            threadCpus(pid) shouldBe everyCpu
            f.signal(SIGTTIN)
            f.awaitLine(Regex("worker 1 pid \\d+"))
            eventually(5.seconds) { threadCpus(pid) shouldBe WorkerCpus.ranges(plan.coresFor(0, 2)!!) }
        }
    }
})

/** The CPUs every thread of [pid] may run on, as in the fixture: one value when they all agree. */
private fun threadCpus(pid: Long): String =
    File("/proc/$pid/task").listFiles().orEmpty().mapNotNull { task ->
        runCatching { File(task, "status").readLines().first { it.startsWith("Cpus_allowed_list:") }.substringAfter(':').trim() }.getOrNull()
    }.distinct().sorted().joinToString("|")
