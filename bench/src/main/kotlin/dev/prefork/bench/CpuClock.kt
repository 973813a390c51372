package dev.prefork.bench

import com.sun.management.OperatingSystemMXBean
import java.io.File
import java.lang.management.ManagementFactory

/**
 * CPU seconds as Linux counts them, to split a load test's CPU among the client (this JVM),
 * the workers, and everything else on the machine. Differences of two [read]s over a span,
 * divided by the span, are cores in use. Process times tick at 10 ms: use spans of seconds.
 */
internal class CpuClock private constructor(val machine: Double, val interrupts: Double, val client: Double, val workers: Double) {
    /** Cores in use between [earlier] and this reading, [seconds] apart. */
    class Cores(val machine: Double, val interrupts: Double, val client: Double, val workers: Double) {
        /**
         * What neither the client nor the workers were charged with: other processes, the
         * supervisors, and interrupt time ([interrupts]: loopback TCP's softirqs among it).
         */
        val other: Double get() = maxOf(0.0, machine - client - workers)

        override fun toString(): String =
            "workers ${workers.format(2)}, client ${client.format(2)}, other ${other.format(2)} " +
                "(irq ${interrupts.format(2)}; machine ${machine.format(2)} of $CPUS)"
    }

    fun coresSince(earlier: CpuClock, seconds: Double): Cores = Cores(
        (machine - earlier.machine) / seconds,
        (interrupts - earlier.interrupts) / seconds,
        (client - earlier.client) / seconds,
        (workers - earlier.workers) / seconds,
    )

    companion object {
        val CPUS: Int = Runtime.getRuntime().availableProcessors()

        /** USER_HZ, the unit of /proc/stat; 100 on every Linux the JDK supports. */
        private const val TICKS_PER_SECOND = 100.0

        /** Reads the clocks now; a worker that exits before the next reading makes that span undercount. */
        fun read(workerPids: List<Long>): CpuClock {
            // /proc/stat's first line: user nice system idle iowait irq softirq steal (guest time is already in user)
            val ticks = File("/proc/stat").useLines { it.first() }.trim().split(Regex("\\s+")).drop(1).map { it.toLong() }
            val busy = ticks.take(8).sum() - ticks[3] - ticks[4]
            return CpuClock(busy / TICKS_PER_SECOND, (ticks[5] + ticks[6]) / TICKS_PER_SECOND, thisJvmSeconds(), workerPids.sumOf(::processSeconds))
        }

        private fun thisJvmSeconds(): Double =
            (ManagementFactory.getOperatingSystemMXBean() as OperatingSystemMXBean).processCpuTime / 1e9

        private fun processSeconds(pid: Long): Double =
            ProcessHandle.of(pid).flatMap { it.info().totalCpuDuration() }.map { it.toNanos() / 1e9 }.orElse(0.0)
    }
}
