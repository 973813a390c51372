package dev.prefork.bench

import java.security.MessageDigest

/**
 * The CPU-bound handler of the fork benchmarks: [iterations] chained SHA-256 digests of 32
 * bytes. The result keeps the JIT from dropping the work.
 */
internal fun hashWork(iterations: Int): Int {
    val digest = MessageDigest.getInstance("SHA-256")
    var hash = ByteArray(32)
    repeat(iterations) { hash = digest.digest(hash) }
    return hash[0].toInt()
}

/**
 * How many [hashWork] iterations take [targetMillis] on this machine once compiled: timed here, in
 * the benchmark JVM, with the very function the workers run (they report their own time too).
 * The fastest of several timings, as the one least disturbed by other load on the machine.
 */
internal fun calibrateHashWork(targetMillis: Double): Int {
    repeat(WARMUP_CALLS) { hashWork(WARMUP_ITERATIONS) }
    val perIteration = List(TIMED_CALLS) { millis { hashWork(TIMED_ITERATIONS) } / TIMED_ITERATIONS }.min()
    return maxOf(1, (targetMillis / perIteration).toInt())
}

private const val WARMUP_CALLS = 300
private const val WARMUP_ITERATIONS = 2_000
private const val TIMED_CALLS = 15
private const val TIMED_ITERATIONS = 20_000
