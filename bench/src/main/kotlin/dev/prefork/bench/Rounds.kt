package dev.prefork.bench

import com.sun.management.OperatingSystemMXBean
import java.lang.management.ManagementFactory

/**
 * Timing for a shared, noisy machine: each variant runs a few warm-up rounds, then [rounds]
 * measured rounds, and the variants take turns within every round (in an order that rotates
 * from round to round), so a burst of noise hits all of them rather than one.
 * Results are medians, which one slow round cannot move.
 *
 * Each round also records the CPU time this JVM used during it (all its threads, not the
 * children's): less sensitive to other load than the wall clock, and it shows work that
 * the wall clock hides on an idle machine (wake-ups of other threads, allocation, GC).
 */
internal class Rounds(private val warmups: Int, private val rounds: Int) {
    init {
        require(warmups >= 0) { "warmups < 0: $warmups" }
        require(rounds > 0) { "rounds <= 0: $rounds" }
    }

    /** One contender: [run] does one round of work and returns its value (ms per op, GB/s, ...). */
    class Variant(val name: String, val run: () -> Double)

    /** The values of every measured round, per variant, in [variants] order. */
    fun measure(variants: List<Variant>): List<Samples> {
        repeat(warmups) { round -> rotated(variants, round).forEach { it.run() } }
        val values = variants.associateWith { mutableListOf<Double>() }
        val cpu = variants.associateWith { mutableListOf<Double>() }
        repeat(rounds) { round ->
            rotated(variants, round).forEach {
                val cpuBefore = processCpuNanos()
                values.getValue(it) += it.run()
                cpu.getValue(it) += (processCpuNanos() - cpuBefore) / 1e6
            }
        }
        return variants.map { Samples(it.name, values.getValue(it), cpu.getValue(it)) }
    }

    private fun processCpuNanos(): Long =
        (ManagementFactory.getOperatingSystemMXBean() as OperatingSystemMXBean).processCpuTime

    private fun rotated(variants: List<Variant>, round: Int): List<Variant> =
        variants.indices.map { variants[(it + round) % variants.size] }
}

/** One variant's results: [values] as its run returned them, [cpuMillis] this JVM's CPU time in each round. */
internal class Samples(val name: String, val values: List<Double>, val cpuMillis: List<Double>) {
    val median: Double get() = median(values)
    val cpuMedianMillis: Double get() = median(cpuMillis)
}

internal fun median(values: List<Double>): Double {
    require(values.isNotEmpty()) { "no values" }
    val sorted = values.sorted()
    val mid = sorted.size / 2
    return if (sorted.size % 2 == 1) sorted[mid] else (sorted[mid - 1] + sorted[mid]) / 2
}

/** Wall-clock milliseconds taken by [body]. */
internal inline fun millis(body: () -> Unit): Double {
    val start = System.nanoTime()
    body()
    return (System.nanoTime() - start) / 1e6
}

internal fun Double.format(decimals: Int): String = "%.${decimals}f".format(this)

/**
 * One result line: the median, every round's value (so the spread is visible), and the
 * median JVM CPU time per round divided by [cpuPer] and labelled [cpuUnit].
 */
internal fun report(samples: Samples, unit: String, decimals: Int, cpuPer: Double, cpuUnit: String) {
    val all = samples.values.joinToString(" ") { it.format(decimals) }
    val cpu = (samples.cpuMedianMillis / cpuPer).format(decimals)
    println("  %-34s %10s %s   JVM cpu %s %s   (rounds: %s)".format(samples.name, samples.median.format(decimals), unit, cpu, cpuUnit, all))
}

/** The RATIO line; [lowerIsBetter] says which side of [target] passes. */
internal fun ratio(label: String, value: Double, target: Double, lowerIsBetter: Boolean) {
    val ok = if (lowerIsBetter) value <= target else value >= target
    val bound = if (lowerIsBetter) "<=" else ">="
    println("  RATIO $label = ${value.format(2)}   (target $bound ${target.format(2)}: ${if (ok) "met" else "MISSED"})")
}

/** The verdict line of a benchmark whose target is an absolute figure rather than a ratio. */
internal fun targetLine(label: String, value: Double, unit: String, target: Double, lowerIsBetter: Boolean) {
    val ok = if (lowerIsBetter) value <= target else value >= target
    val bound = if (lowerIsBetter) "<=" else ">="
    println("  MEDIAN $label = ${value.format(1)} $unit   (target $bound ${target.format(0)} $unit: ${if (ok) "met" else "MISSED"})")
}
