package dev.prefork.samples

import dev.prefork.ForkOptions
import dev.prefork.RestartDecision
import dev.prefork.RestartPolicy
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.comparables.shouldBeLessThanOrEqualTo
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.types.shouldBeInstanceOf
import io.kotest.property.Arb
import io.kotest.property.arbitrary.int
import io.kotest.property.arbitrary.list
import io.kotest.property.arbitrary.long
import io.kotest.property.arbitrary.set
import io.kotest.property.checkAll
import java.time.Duration

/**
 * Stands for the options an application passes to `forkProcesses`. Build yours in one function
 * of your main code that both `main` and the test call, so the test checks what ships.
 */
private fun shippedOptions(): ForkOptions = ForkOptions.builder()
    .numProcesses(4)
    .maxRestarts(5)
    .restartWindow(Duration.ofSeconds(10))
    .backoff(Duration.ofMillis(100), Duration.ofSeconds(5))
    .build()

/**
 * How to test your own restart configuration, in milliseconds and without starting a process.
 *
 * The supervisor decides every restart with `RestartPolicy.of(options)`: a pure function of the
 * exits it is told about and of the time it is given, in nanos. A test can play hours of crashes
 * through the same policy on a clock of its own, and check that the options do what you meant:
 *
 * 1. Get `val policy = RestartPolicy.of(options)` and start from `policy.initial(n)`, `n` your
 *    `numProcesses` (not 0: pick the core count you deploy on).
 * 2. Be the clock: any `Long` that only grows, from anywhere (the policy compares times by
 *    difference, as with `System.nanoTime()`).
 * 3. For each exit call `policy.onExit(state, id, clean, ranForNanos, nowNanos)`, and pass the
 *    `state` it returns to the next call. On a [RestartDecision.Restart] the worker starts again
 *    `delayNanos` later: count its next `ranForNanos` from then, as the supervisor does.
 * 4. Let kotest's `checkAll` pick which workers crash and how long they last, and assert what
 *    must hold for every pick. When one fails, kotest prints the smallest pick that breaks it.
 *
 * The test scope needs kotest-runner-junit5-jvm, kotest-property-jvm and
 * kotest-assertions-core-jvm (see this module's pom.xml).
 */
class CrashLoopPolicyTest : FunSpec({
    val options = shippedOptions()
    val policy = RestartPolicy.of(options)
    val n = options.numProcesses

    test("a crash loop gives up within 10 s") {
        val crashing = Arb.set(Arb.int(0 until n), 1..n) // the others keep serving
        val runs = Arb.list(Arb.long(0L..Duration.ofSeconds(1).toNanos()), 1..20) // "right after start"
        checkAll(crashing, runs, Arb.long()) { ids, ranFor, origin ->
            val limit = Duration.ofSeconds(10)
            val gaveUpAfter = policy.crashLoop(n, ids, ranFor, origin, limit)
            withClue("workers $ids crashing $ranFor ns after each start") {
                gaveUpAfter.shouldNotBeNull() shouldBeLessThanOrEqualTo limit
            }
        }
    }

    test("a single worker that crashes once a minute is never given up on") {
        val aboutAMinute = Arb.long(Duration.ofSeconds(50).toNanos()..Duration.ofSeconds(70).toNanos())
        checkAll(Arb.int(0 until n), Arb.list(aboutAMinute, 1_440..1_440), Arb.long()) { id, aDay, origin ->
            var state = policy.initial(n)
            var now = origin
            for ((i, ranFor) in aDay.withIndex()) {
                now += ranFor
                val (decision, next) = policy.onExit(state, id, clean = false, ranForNanos = ranFor, nowNanos = now)
                withClue("crash ${i + 1}, ${Duration.ofNanos(now - origin)} in") {
                    val restart = decision.shouldBeInstanceOf<RestartDecision.Restart>()
                    // It ran longer than the backoff's maximum, so it counts as healthy: no growing delay.
                    restart.delayNanos shouldBe options.backoffInitial.toNanos()
                    now += restart.delayNanos
                }
                state = next
            }
        }
    }
})

/**
 * Plays a crash loop: each worker in [crashing] exits abnormally [runs] nanos after every start
 * (taken in turn), and starts again after the delay the policy returns. Returns how long after
 * the first failure the policy gave up, or null if it had not within [limit].
 */
private fun RestartPolicy.crashLoop(n: Int, crashing: Set<Int>, runs: List<Long>, origin: Long, limit: Duration): Duration? {
    var state = initial(n)
    var run = 0
    fun nextRun(): Long = runs[run++ % runs.size]
    // Nanos since the workers first started; the policy sees origin + that.
    val startedAt = crashing.associateWith { 0L }.toMutableMap()
    val exitsAt = crashing.associateWith { nextRun() }.toMutableMap()
    val firstFailure = exitsAt.values.min()
    while (true) {
        val (id, now) = exitsAt.entries.minBy { it.value }
        if (now - firstFailure > limit.toNanos()) return null
        val (decision, next) = onExit(state, id, clean = false, ranForNanos = now - startedAt.getValue(id), nowNanos = origin + now)
        state = next
        when (decision) {
            is RestartDecision.Restart -> {
                startedAt[id] = now + decision.delayNanos
                exitsAt[id] = startedAt.getValue(id) + nextRun()
            }
            RestartDecision.GiveUp -> return Duration.ofNanos(now - firstFailure)
            else -> error("only crashes here, yet $decision")
        }
    }
}
