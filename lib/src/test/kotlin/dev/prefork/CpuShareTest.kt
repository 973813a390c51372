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

    /** Each worker's line: id to (processors, CPUs of every thread). */
    fun FixtureJvm.workers(n: Int): Map<Int, Pair<Int, String>> = (0 until n).associate {
        awaitLine(Regex("worker (\\d+) pid \\d+ processors=(\\d+) cpus=(\\S+)")).destructured.let { (id, count, cpus) -> id.toInt() to (count.toInt() to cpus) }
    }

    test("by default, worker i of 2 is told its share of the processors and runs, every thread of it, on its slice of the CPUs") {
        FixtureJvm(FIXTURE, listOf("2", "true", "true", "0")).use { f ->
            val seen = f.workers(2)
            f.exitCode(60) shouldBe 0
            for (id in 0 until 2) seen.getValue(id) shouldBe (plan.processorsFor(id, 2) to WorkerCpus.ranges(plan.coresFor(id, 2)!!))
            f.stderr() shouldContain "-XX:ActiveProcessorCount"
        }
    }

    test("with both options off, every worker sees and runs on what the supervisor has") {
        FixtureJvm(FIXTURE, listOf("2", "false", "false", "0")).use { f ->
            val seen = f.workers(2)
            f.exitCode(60) shouldBe 0
            seen.values.toSet() shouldBe setOf(processors to everyCpu)
        }
    }

    test("a processor count set on the command line is the user's: no flag is added, pinning still applies") {
        FixtureJvm(FIXTURE, listOf("2", "true", "true", "0"), jvmFlags = listOf("-XX:ActiveProcessorCount=3")).use { f ->
            val seen = f.workers(2)
            f.exitCode(60) shouldBe 0
            for (id in 0 until 2) seen.getValue(id) shouldBe (3 to WorkerCpus.ranges(WorkerCpus(3, Affinity.of(), true).coresFor(id, 2)!!))
        }
    }

    test("a spare runs anywhere while it waits, and on the CPUs of the id it takes over") {
        val markers = Files.createTempDirectory("cpu-share")
        try {
            FixtureJvm(FIXTURE, listOf("2", "true", "true", "1"), environment = mapOf("CPU_SHARE_MARKERS" to markers.toString())).use { f ->
                val seen = f.workers(2)
                f.exitCode(90) shouldBe 0
                f.stdout() shouldContain "(a spare took over)"
                // A spare is told the smallest share: on 2 workers of an even count, the same as the id's.
                for (id in 0 until 2) seen.getValue(id).second shouldBe WorkerCpus.ranges(plan.coresFor(id, 2)!!)
            }
        } finally {
            markers.toFile().deleteRecursively()
        }
    }

    test("SIGTTIN moves the workers that were running to their slice of the CPUs for the new count").config(enabled = Affinity.of().size >= 2) {
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
