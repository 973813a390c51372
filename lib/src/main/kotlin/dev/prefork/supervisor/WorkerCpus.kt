package dev.prefork.supervisor

import dev.prefork.ForkOptions
import dev.prefork.log.logger
import dev.prefork.log.warn
import dev.prefork.posix.Affinity
import dev.prefork.posix.ErrnoException

private val logger = logger("dev.prefork.supervisor.WorkerCpus")

/**
 * Each worker's share of the CPUs the supervisor may use ([ForkOptions.cpuShare],
 * [ForkOptions.pinWorkers]). A JVM sizes itself for every CPU it sees (JIT and GC threads, the
 * common ForkJoin pool, Netty's event loops, Jetty's selectors), so N workers that each see
 * the whole machine run N times the threads it has cores for, and thrash each other.
 *
 * [processors] is what the supervisor's JVM may use (`Runtime.availableProcessors()`: its
 * affinity and its cgroup's CPU quota included, or its own `-XX:ActiveProcessorCount`); worker
 * `id` of `n` is told `processors / n`, one more for the first `processors % n` ids, at least
 * 1 ([processorsFor]). [cpus] are the CPUs the supervisor may run on; pinned, worker `id` of
 * `n` moves, once ready, to the `id`-th of `n` contiguous slices of them or, with more workers
 * than CPUs, to CPU `id mod size` ([coresFor], [move]): its start-up had every CPU. A spare,
 * and the start-up archive's training run, get the smallest share and run anywhere until a
 * spare has an id and is ready.
 */
internal class WorkerCpus(
    private val processors: Int,
    /** The CPUs to pin workers to; null: no pinning. */
    private val cpus: IntArray?,
    /** Whether workers' command lines get `-XX:ActiveProcessorCount`. */
    private val tellProcessors: Boolean,
) {
    init {
        require(processors >= 1 && cpus?.isEmpty() != true) { "no CPU: $processors processors, CPUs ${cpus?.joinToString(",")}" }
    }

    /** The processor count worker [id] of [workers] is given; for a spare or a training run ([id] null), the smallest share. */
    fun processorsFor(id: Int?, workers: Int): Int {
        val extra = if (id != null && id < processors % workers) 1 else 0
        return maxOf(1, processors / workers + extra)
    }

    /** The CPUs worker [id] of [workers] is pinned to, or null without pinning. */
    fun coresFor(id: Int, workers: Int): IntArray? {
        val cpus = cpus ?: return null
        if (workers >= cpus.size) return intArrayOf(cpus[id % cpus.size])
        val base = cpus.size / workers
        val extra = cpus.size % workers
        val start = id * base + minOf(id, extra)
        return cpus.copyOfRange(start, start + base + if (id < extra) 1 else 0)
    }

    /** [command] as worker [id] (null: a spare or a training run) of [workers] is started with. */
    fun command(command: List<String>, id: Int?, workers: Int): List<String> =
        if (tellProcessors) listOf(command[0], "$FLAG${processorsFor(id, workers)}") + command.subList(1, command.size) else command

    /** Moves the running worker [pid], now [id] of [workers], to its CPUs; a failure is logged, the worker keeps running where it did. */
    fun move(pid: Long, id: Int, workers: Int) {
        val cores = coresFor(id, workers) ?: return
        try {
            Affinity.pin(pid, cores)
        } catch (e: ErrnoException) {
            logger.warn { "child $id (pid $pid) stays on the CPUs it ran on: ${e.message}" }
        } catch (e: RuntimeException) {
            // Placement is an optimisation: whatever goes wrong in it must not stop the supervisor.
            logger.warn(e) { "child $id (pid $pid) stays on the CPUs it ran on" }
        }
    }

    /** One line for the log: what each of [workers] gets. */
    fun describe(workers: Int): String {
        val told = if (tellProcessors) {
            "each of $workers workers is told ${listOf(processorsFor(0, workers), processorsFor(workers - 1, workers)).distinct().joinToString(" or ")} of $processors processors (-XX:ActiveProcessorCount)"
        } else {
            "workers see $processors processors each"
        }
        val pinned = if (cpus == null) "not pinned" else "pinned: " + (0 until minOf(workers, MAX_LISTED)).joinToString(", ") { "child $it on CPU ${ranges(coresFor(it, workers)!!)}" } + if (workers > MAX_LISTED) ", …" else ""
        return "$told; $pinned"
    }

    companion object {
        const val FLAG = "-XX:ActiveProcessorCount="
        private const val MAX_LISTED = 4

        /** The variables through which a java launcher takes JVM options besides its command line. */
        private val OPTION_VARIABLES = listOf("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS")

        /**
         * The plan for workers started by [command] with [environment] under [options]: the
         * flag unless the command already says how many processors its JVM has (on its command
         * line or in a variable the launcher reads) or is no java launcher (a
         * [ForkOptions.workerCommand] naming a script); pinning unless this process's CPUs
         * cannot be read. Null when neither is left to do.
         */
        fun of(options: ForkOptions, command: List<String>, environment: Map<String, String>): WorkerCpus? {
            val tell = options.cpuShare && !setsProcessors(command, environment)
            val cpus = if (options.pinWorkers) ownCpus() else null
            if (!tell && cpus == null) return null
            return WorkerCpus(Runtime.getRuntime().availableProcessors(), cpus, tell)
        }

        fun setsProcessors(command: List<String>, environment: Map<String, String>): Boolean =
            !WorkerCommand.isJavaLauncher(command[0]) ||
                WorkerCommand.jvmOptions(command).any { it.startsWith(FLAG) } ||
                OPTION_VARIABLES.any { environment[it]?.contains(FLAG) == true }

        private fun ownCpus(): IntArray? = try {
            Affinity.of()
        } catch (e: ErrnoException) {
            logger.warn { "workers are not pinned: ${e.message}" }
            null
        } catch (e: UnsatisfiedLinkError) {
            logger.warn { "workers are not pinned: this C library has no sched_getaffinity (${e.message})" }
            null
        }

        /** "0-3,8" for CPUs 0, 1, 2, 3 and 8, as `taskset` and `/proc/<pid>/status` write them. */
        fun ranges(cpus: IntArray): String {
            val parts = mutableListOf<String>()
            var i = 0
            while (i < cpus.size) {
                var j = i
                while (j + 1 < cpus.size && cpus[j + 1] == cpus[j] + 1) j++
                parts += if (j == i) "${cpus[i]}" else "${cpus[i]}-${cpus[j]}"
                i = j + 1
            }
            return parts.joinToString(",")
        }
    }
}
