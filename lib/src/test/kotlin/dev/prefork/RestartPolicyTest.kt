package dev.prefork

import dev.prefork.RestartDecision.GiveUp
import dev.prefork.RestartDecision.Restart
import dev.prefork.RestartDecision.Retire
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.booleans.shouldBeTrue
import io.kotest.matchers.collections.shouldNotContain
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.ints.shouldBeLessThanOrEqual
import io.kotest.matchers.longs.shouldBeLessThanOrEqual
import io.kotest.matchers.shouldBe
import io.kotest.matchers.types.shouldBeInstanceOf
import io.kotest.property.Arb
import io.kotest.property.arbitrary.arbitrary
import io.kotest.property.arbitrary.boolean
import io.kotest.property.arbitrary.int
import io.kotest.property.arbitrary.list
import io.kotest.property.arbitrary.long
import io.kotest.property.arbitrary.orNull
import io.kotest.property.checkAll
import java.math.BigInteger
import java.time.Duration
import kotlin.random.Random

/** One exit fed to the policy; [pick] chooses among the live ids, [dt] advances the clock. */
private data class Exit(val pick: Int, val clean: Boolean, val ranFor: Long, val dt: Long)

private data class Scenario(val policy: RestartPolicy, val n: Int, val start: Long, val exits: List<Exit>)

private data class Step(
    val before: RestartState,
    val id: Int,
    val clean: Boolean,
    val ranFor: Long,
    val now: Long,
    val decision: RestartDecision,
    val after: RestartState,
)

private val policies: Arb<RestartPolicy> = arbitrary {
    val backoff = Arb.boolean().bind()
    val initial = if (backoff) Arb.long(1L..100L).bind() else 0L
    RestartPolicy(
        maxRestarts = Arb.int(0..8).bind(),
        restartWindowNanos = when (Arb.int(0..2).bind()) {
            0 -> null
            1 -> Arb.long(1L..20L).bind() // short, so exits land on its edge
            else -> Arb.long(1L..2_000L).bind()
        },
        backoffInitialNanos = initial,
        backoffMaxNanos = if (backoff) initial + Arb.long(0L..5_000L).bind() else 0L,
    )
}

/** Exits around [policy]'s edges: run times at and just short of healthy, clock steps at its window. */
private fun exits(policy: RestartPolicy): Arb<Exit> = arbitrary {
    val max = policy.backoffMaxNanos
    val ranFor = when (Arb.int(0..3).bind()) {
        0 -> max // exactly healthy
        1 -> (max - 1).coerceAtLeast(0) // just short of healthy
        else -> Arb.long(0L..2 * max + 10).bind()
    }
    val dt = when (Arb.int(0..2).bind()) {
        0 -> 0L
        1 -> Arb.long(0L..5L).bind()
        else -> Arb.long(0L..300L).bind()
    }
    // Mostly failures, so budgets and backoff get exercised.
    Exit(Arb.int(0..1_000).bind(), Arb.int(0..3).bind() == 0, ranFor, dt)
}

private val scenarios: Arb<Scenario> = arbitrary {
    val policy = policies.bind()
    val exits = Arb.list(exits(policy), 0..80).bind()
    // Any start, near Long.MAX_VALUE too: nanoTime values wrap and are compared by difference.
    Scenario(policy, Arb.int(1..5).bind(), Arb.long().bind(), exits)
}

private fun Scenario.run(): List<Step> {
    var state = policy.initial(n)
    var now = start
    val steps = mutableListOf<Step>()
    for (e in exits) {
        if (state.alive.isEmpty()) break
        val id = state.alive.sorted()[e.pick % state.alive.size]
        now += e.dt
        val (decision, next) = policy.onExit(state, id, e.clean, e.ranFor, now)
        steps += Step(state, id, e.clean, e.ranFor, now, decision, next)
        state = next
    }
    return steps
}

/** A resizing run's events: exits as in [Scenario], and SIGTTIN/SIGTTOU; [Op.Add.pick] and [Op.Remove.pick] choose the id. */
private sealed interface Op {
    data class Exits(val exit: Exit) : Op
    data class Add(val pick: Int) : Op
    data class Remove(val pick: Int) : Op
}

private data class ResizeScenario(val policy: RestartPolicy, val n: Int, val start: Long, val ops: List<Op>)

/** What one [Op] did; [decision] is null for an add or a remove. */
private data class Change(
    val op: Op,
    val id: Int,
    val now: Long,
    val before: RestartState,
    val decision: RestartDecision?,
    val after: RestartState,
)

/** Ids an add may pick: a few past the initial ones, so removed, retired and new ids all come back. */
private fun ResizeScenario.addable(state: RestartState): List<Int> = (0 until n + 3).filter { it !in state.alive }

private val resizes: Arb<ResizeScenario> = arbitrary {
    val policy = policies.bind()
    val op = arbitrary {
        when (Arb.int(0..4).bind()) {
            0 -> Op.Add(Arb.int(0..1_000).bind())
            1 -> Op.Remove(Arb.int(0..1_000).bind())
            else -> Op.Exits(exits(policy).bind())
        }
    }
    ResizeScenario(policy, Arb.int(1..5).bind(), Arb.long().bind(), Arb.list(op, 0..120).bind())
}

/**
 * Runs the ops within the supervisor's limits: it never removes the last live worker, and stops once none
 * is alive. Any id may come and go, not just the highest as SIGTTIN/SIGTTOU pick: the policy must not rely on it.
 */
private fun ResizeScenario.run(): List<Change> {
    var state = policy.initial(n)
    var now = start
    val changes = mutableListOf<Change>()
    for (op in ops) {
        if (state.alive.isEmpty()) break
        val alive = state.alive.sorted()
        val change = when (op) {
            is Op.Exits -> {
                val e = op.exit
                val id = alive[e.pick % alive.size]
                now += e.dt
                val (decision, next) = policy.onExit(state, id, e.clean, e.ranFor, now)
                Change(op, id, now, state, decision, next)
            }
            is Op.Add -> {
                val ids = addable(state)
                if (ids.isEmpty()) continue
                val id = ids[op.pick % ids.size]
                Change(op, id, now, state, null, policy.onAdded(state, id))
            }
            is Op.Remove -> {
                if (alive.size == 1) continue
                val id = alive[op.pick % alive.size]
                Change(op, id, now, state, null, policy.onRemoved(state, id))
            }
        }
        changes += change
        state = change.after
    }
    return changes
}

private fun expectedDelay(policy: RestartPolicy, k: Int): Long =
    BigInteger.valueOf(policy.backoffInitialNanos).shiftLeft(k - 1)
        .min(BigInteger.valueOf(policy.backoffMaxNanos)).toLong()

class RestartPolicyTest : FunSpec({
    val tornado = RestartPolicy(maxRestarts = 3)

    test("Tornado's test_multi_process: exits 2, 3, 0, 4, 0, 0 with n = 3, maxRestarts = 3") {
        var s = tornado.initial(3)
        fun exit(id: Int, status: Int): RestartDecision {
            val (d, next) = tornado.onExit(s, id, clean = status == 0, ranForNanos = 1_000, nowNanos = 0)
            s = next
            return d
        }
        exit(0, 2) shouldBe Restart(0, 0)
        exit(1, 3) shouldBe Restart(1, 0)
        exit(0, 0) shouldBe Retire(0)
        exit(1, 4) shouldBe Restart(1, 0) // the third restart, still within budget
        s.done shouldBe false
        exit(1, 0) shouldBe Retire(1)
        exit(2, 0) shouldBe Retire(2)
        s.done shouldBe true
        s.retired shouldBe setOf(0, 1, 2)
        s.restarts shouldBe 3
    }

    test("Tornado: the maxRestarts + 1-th restart gives up, and nothing is restarted after") {
        var s = tornado.initial(3)
        repeat(3) { i ->
            val (d, next) = tornado.onExit(s, i % 3, clean = false, ranForNanos = 0, nowNanos = i.toLong())
            d shouldBe Restart(i % 3, 0)
            s = next
        }
        val (d, next) = tornado.onExit(s, 0, clean = false, ranForNanos = 0, nowNanos = 10)
        d shouldBe GiveUp
        next.gaveUp shouldBe true
        next.alive shouldBe setOf(1, 2)
        // The survivors being stopped: neither restarted nor retired.
        val (d1, s1) = tornado.onExit(next, 1, clean = false, ranForNanos = 0, nowNanos = 11)
        d1 shouldBe GiveUp
        val (d2, s2) = tornado.onExit(s1, 2, clean = true, ranForNanos = 0, nowNanos = 12)
        d2 shouldBe GiveUp
        s2.alive shouldBe emptySet()
        s2.done shouldBe false
    }

    test("resizing: an added id is alive and restarted like the others; a removed one decides nothing, and the last stays") {
        val policy = RestartPolicy(maxRestarts = 1)
        val grown = policy.onAdded(policy.initial(2), 2)
        grown.alive shouldBe setOf(0, 1, 2)
        grown.restarts shouldBe 0
        policy.onExit(grown, 2, clean = false, ranForNanos = 0, nowNanos = 0).decision shouldBe Restart(2, 0)
        shouldThrow<IllegalArgumentException> { policy.onAdded(grown, 1) }
        val shrunk = policy.onRemoved(grown, 2)
        shrunk.alive shouldBe setOf(0, 1)
        shouldThrow<IllegalArgumentException> { policy.onExit(shrunk, 2, clean = false, ranForNanos = 0, nowNanos = 0) }
        shouldThrow<IllegalArgumentException> { policy.onRemoved(policy.onRemoved(shrunk, 1), 0) }
        // Removing what failed before clears its backoff: added again, it starts from its first failure.
        val failing = RestartPolicy(maxRestarts = 10, backoffInitialNanos = 100, backoffMaxNanos = 10_000)
        var state = failing.initial(2)
        repeat(3) { state = failing.onExit(state, 1, clean = false, ranForNanos = 0, nowNanos = 0).state }
        state = failing.onAdded(failing.onRemoved(state, 1), 1)
        failing.onExit(state, 1, clean = false, ranForNanos = 0, nowNanos = 0).decision shouldBe Restart(1, 100)
    }

    test("maxRestarts = 0 gives up at the first abnormal exit") {
        val p = RestartPolicy(maxRestarts = 0)
        p.onExit(p.initial(2), 1, clean = false, ranForNanos = 5, nowNanos = 5).decision shouldBe GiveUp
    }

    test("window: at most maxRestarts restarts decided in the last window") {
        val p = RestartPolicy(maxRestarts = 2, restartWindowNanos = 100)
        var s = p.initial(1)
        fun fail(now: Long): RestartDecision =
            p.onExit(s, 0, clean = false, ranForNanos = 0, nowNanos = now).also { s = it.state }.decision
        fail(0) shouldBe Restart(0, 0)
        fail(50) shouldBe Restart(0, 0)
        val (atWindowEnd, _) = p.onExit(s, 0, clean = false, ranForNanos = 0, nowNanos = 99)
        atWindowEnd shouldBe GiveUp
        fail(100) shouldBe Restart(0, 0) // the restart at 0 has left the window
        fail(149) shouldBe GiveUp
    }

    test("window across the wrap of nanoTime") {
        val p = RestartPolicy(maxRestarts = 1, restartWindowNanos = 100)
        val (d, s) = p.onExit(p.initial(1), 0, clean = false, ranForNanos = 0, nowNanos = Long.MAX_VALUE - 10)
        d shouldBe Restart(0, 0)
        p.onExit(s, 0, clean = false, ranForNanos = 0, nowNanos = Long.MIN_VALUE + 50).decision shouldBe GiveUp
        p.onExit(s, 0, clean = false, ranForNanos = 0, nowNanos = Long.MIN_VALUE + 89).decision shouldBe Restart(0, 0)
    }

    test("backoff doubles per consecutive failure up to max, and resets after a healthy run or a clean exit") {
        val p = RestartPolicy(maxRestarts = 100, backoffInitialNanos = 10, backoffMaxNanos = 80)
        var s = p.initial(2)
        fun exit(id: Int, clean: Boolean, ranFor: Long): RestartDecision =
            p.onExit(s, id, clean, ranFor, nowNanos = 0).also { s = it.state }.decision
        listOf(10L, 20L, 40L, 80L, 80L).forEach { exit(0, clean = false, ranFor = 79) shouldBe Restart(0, it) }
        exit(1, clean = false, ranFor = 0) shouldBe Restart(1, 10) // per id
        exit(0, clean = false, ranFor = 80) shouldBe Restart(0, 10) // ran for backoffMax: healthy
        exit(0, clean = false, ranFor = 0) shouldBe Restart(0, 20)
        exit(1, clean = true, ranFor = 0) shouldBe Retire(1)
        s.consecutiveFailures.keys shouldNotContain 1
    }

    test("backoff delay never overflows") {
        val p = RestartPolicy(maxRestarts = 0, backoffInitialNanos = 3, backoffMaxNanos = Long.MAX_VALUE)
        p.backoffDelayNanos(62) shouldBe (3L shl 61)
        p.backoffDelayNanos(63) shouldBe Long.MAX_VALUE
        p.backoffDelayNanos(Int.MAX_VALUE) shouldBe Long.MAX_VALUE
        checkAll(Arb.long(1L..Long.MAX_VALUE), Arb.long(0L..Long.MAX_VALUE), Arb.int(1..200)) { initial, extra, k ->
            val max = if (extra > Long.MAX_VALUE - initial) Long.MAX_VALUE else initial + extra
            val q = RestartPolicy(maxRestarts = 0, backoffInitialNanos = initial, backoffMaxNanos = max)
            q.backoffDelayNanos(k) shouldBe expectedDelay(q, k)
        }
    }

    test("arguments are checked") {
        shouldThrow<IllegalArgumentException> { RestartPolicy(maxRestarts = -1) }.message shouldBe "maxRestarts < 0: -1"
        shouldThrow<IllegalArgumentException> { RestartPolicy(maxRestarts = 1, restartWindowNanos = 0) }
        shouldThrow<IllegalArgumentException> { RestartPolicy(1, backoffInitialNanos = -1, backoffMaxNanos = 0) }
        shouldThrow<IllegalArgumentException> { RestartPolicy(1, backoffInitialNanos = 10, backoffMaxNanos = 9) }
        shouldThrow<IllegalArgumentException> { tornado.initial(0) }.message shouldBe "n < 1: 0"
        shouldThrow<IllegalArgumentException> { tornado.onExit(tornado.initial(1), 0, false, -1, 0) }
    }

    test("property: a restart reuses the exiting id, which stays alive only then") {
        checkAll(scenarios) { sc ->
            for (step in sc.run()) {
                val d = step.decision
                withClue(step) {
                    if (d is Restart) d.id shouldBe step.id
                    (step.id in step.after.alive) shouldBe (d is Restart)
                    step.after.alive shouldBe step.before.alive - step.id + listOfNotNull((d as? Restart)?.id)
                    (step.after.alive.containsAll(step.after.consecutiveFailures.keys)).shouldBeTrue()
                }
            }
        }
    }

    test("property: clean exits are never restarted") {
        checkAll(scenarios) { sc ->
            for (step in sc.run().filter { it.clean }) {
                withClue(step) {
                    step.decision shouldBe if (step.before.gaveUp) GiveUp else Retire(step.id)
                    step.after.alive shouldNotContain step.id
                    step.after.consecutiveFailures.keys shouldNotContain step.id
                }
            }
        }
    }

    test("property: never more restarts than the budget, and no give-up before it is spent") {
        var gaveUp = 0
        var restarted = 0
        checkAll(scenarios) { sc ->
            val steps = sc.run()
            val window = sc.policy.restartWindowNanos
            val restartTimes = mutableListOf<Long>()
            for (step in steps) {
                // A restart at t counts at `now` while now - t < window (differences: times may wrap).
                val spent = if (window == null) restartTimes.size else restartTimes.count { step.now - it < window }
                withClue(step) {
                    when (step.decision) {
                        is Restart -> spent shouldBeLessThanOrEqual sc.policy.maxRestarts - 1
                        GiveUp -> if (!step.before.gaveUp) spent shouldBe sc.policy.maxRestarts else Unit
                        is Retire -> step.clean shouldBe true
                    }
                }
                if (step.decision is Restart) restartTimes += step.now
            }
            if (window == null) restartTimes.size shouldBeLessThanOrEqual sc.policy.maxRestarts
            if (steps.any { it.decision == GiveUp && !it.before.gaveUp }) gaveUp++
            if (restartTimes.isNotEmpty()) restarted++
        }
        // Both branches above were checked, not passed over: some scenarios gave up, some restarted.
        withClue("scenarios that gave up") { gaveUp shouldBeGreaterThan 0 }
        withClue("scenarios that restarted") { restarted shouldBeGreaterThan 0 }
    }

    test("property: backoff delay is exactly min(initial * 2^(k-1), max) for the k-th consecutive failure") {
        checkAll(scenarios) { sc ->
            val p = sc.policy
            val consecutive = mutableMapOf<Int, Int>()
            for (step in sc.run()) {
                when (val d = step.decision) {
                    is Retire -> consecutive.remove(step.id)
                    is Restart -> {
                        val k = if (step.ranFor >= p.backoffMaxNanos) 1 else (consecutive[step.id] ?: 0) + 1
                        consecutive[step.id] = k
                        withClue("$step k=$k") {
                            d.delayNanos shouldBe expectedDelay(p, k)
                            d.delayNanos shouldBeLessThanOrEqual p.backoffMaxNanos
                        }
                    }
                    GiveUp -> {}
                }
            }
        }
    }

    test("property: the supervisor terminates in Done or GiveUp, and nothing restarts after") {
        checkAll(policies, Arb.int(1..5), Arb.long(), Arb.boolean()) { policy, n, seed, sameInstant ->
            val random = Random(seed)
            // With a window and a slow enough failure rate restarts go on for ever, by design;
            // all exits at one instant make the window as strict as the lifetime budget.
            val dtMax = if (policy.restartWindowNanos == null || sameInstant) 0L else 500L
            val bound = 2 * n + policy.maxRestarts
            var state = policy.initial(n)
            var now = seed
            var exits = 0
            var gaveUpAt = -1
            while (state.alive.isEmpty().not() && exits <= 10_000) {
                val notAlive = listOf(-1, n, Int.MIN_VALUE, Int.MAX_VALUE) + ((0 until n) - state.alive)
                for (id in notAlive) {
                    shouldThrow<IllegalArgumentException> { policy.onExit(state, id, random.nextBoolean(), 0, now) }
                }
                val id = state.alive.random(random)
                now += random.nextLong(0, dtMax + 1)
                val (d, next) = policy.onExit(state, id, random.nextInt(4) == 0, random.nextLong(0, 6_000), now)
                if (gaveUpAt >= 0) d shouldBe GiveUp
                if (d == GiveUp && gaveUpAt < 0) gaveUpAt = exits
                state = next
                exits++
            }
            withClue("$policy n=$n exits=$exits $state") {
                state.alive shouldBe emptySet()
                if (dtMax == 0L) exits shouldBeLessThanOrEqual bound
                state.done shouldBe (gaveUpAt < 0)
                state.gaveUp shouldBe (gaveUpAt >= 0)
                if (state.done) state.retired shouldBe (0 until n).toSet()
                for (id in listOf(-1) + (0..n)) {
                    shouldThrow<IllegalArgumentException> { policy.onExit(state, id, false, 0, now) }
                }
            }
        }
    }

    test("property: after GiveUp every exit is GiveUp, and state.done stays false") {
        checkAll(scenarios) { sc ->
            val steps = sc.run()
            val first = steps.indexOfFirst { it.decision == GiveUp }
            if (first >= 0) {
                for (step in steps.drop(first)) {
                    step.decision.shouldBeInstanceOf<GiveUp>()
                    step.after.gaveUp shouldBe true
                    step.after.done shouldBe false
                }
            }
        }
    }

    test("property: of(options) takes maxRestarts, restartWindow and backoff from the options exactly") {
        // Up to half of Long.MAX_VALUE each, so that initial + extra stays a Duration toNanos can return.
        val nanos = Arb.long(0L..Long.MAX_VALUE / 2)
        checkAll(Arb.int(0..Int.MAX_VALUE), Arb.long(1L..Long.MAX_VALUE).orNull(0.3), nanos, nanos) { max, window, initial, extra ->
            val options = ForkOptions.builder()
                .maxRestarts(max)
                .restartWindow(window?.let(Duration::ofNanos))
                .backoff(Duration.ofNanos(initial), Duration.ofNanos(initial + extra))
                .build()
            RestartPolicy.of(options) shouldBe RestartPolicy(max, window, initial, initial + extra)
        }
        RestartPolicy.of(ForkOptions.builder().build()) shouldBe RestartPolicy(maxRestarts = 100)
    }

    test("property: with adds and removes, alive holds only ids ever started, and never a removed one until it is added again") {
        checkAll(resizes) { sc ->
            val started = (0 until sc.n).toMutableSet()
            val removed = mutableSetOf<Int>()
            for (c in sc.run()) {
                withClue(c) {
                    when (c.op) {
                        is Op.Add -> {
                            c.after.alive shouldBe c.before.alive + c.id
                            c.after.retired shouldBe c.before.retired - c.id
                            started += c.id
                            removed -= c.id
                        }
                        is Op.Remove -> {
                            c.after.alive shouldBe c.before.alive - c.id
                            c.after.retired shouldBe c.before.retired
                            removed += c.id
                        }
                        is Op.Exits -> {}
                    }
                    started.containsAll(c.after.alive).shouldBeTrue()
                    c.after.alive.intersect(removed) shouldBe emptySet()
                    c.after.alive.intersect(c.after.retired) shouldBe emptySet()
                    c.after.alive.containsAll(c.after.consecutiveFailures.keys).shouldBeTrue()
                    for (id in removed) {
                        shouldThrow<IllegalArgumentException> { sc.policy.onExit(c.after, id, clean = false, ranForNanos = 0, nowNanos = c.now) }
                    }
                }
            }
        }
    }

    test("property: adds and removes never change restarts, restartTimes or gaveUp") {
        checkAll(resizes) { sc ->
            for (c in sc.run().filter { it.decision == null }) {
                withClue(c) {
                    c.after.restarts shouldBe c.before.restarts
                    c.after.restartTimes shouldBe c.before.restartTimes
                    c.after.gaveUp shouldBe c.before.gaveUp
                }
            }
        }
    }

    test("property: onRemoved refuses the last alive id, and any id not alive") {
        var lasts = 0
        checkAll(resizes) { sc ->
            val states = listOf(sc.policy.initial(sc.n)) + sc.run().map { it.after }
            for (s in states) {
                withClue(s) {
                    for (id in listOf(-1) + (0 until sc.n + 3) - s.alive) {
                        shouldThrow<IllegalArgumentException> { sc.policy.onRemoved(s, id) }
                    }
                    if (s.alive.size == 1) {
                        lasts++
                        val last = s.alive.single()
                        shouldThrow<IllegalArgumentException> { sc.policy.onRemoved(s, last) }.message shouldBe
                            "worker $last is the last one alive"
                    } else {
                        for (id in s.alive) sc.policy.onRemoved(s, id).alive shouldBe s.alive - id
                    }
                }
            }
        }
        lasts shouldBeGreaterThan 0 // the generator does reach a single live worker
    }

    test("property: with adds and removes, one budget decides every exit, and an added id's backoff starts afresh") {
        var addedDecided = 0
        checkAll(resizes) { sc ->
            val p = sc.policy
            val window = p.restartWindowNanos
            // The model: restarts of every id, removed ones included, share one budget.
            val restartTimes = mutableListOf<Long>()
            val consecutive = mutableMapOf<Int, Int>()
            val added = mutableSetOf<Int>()
            var gaveUp = false
            for (c in sc.run()) {
                val op = c.op
                if (op !is Op.Exits) {
                    if (op is Op.Add) added += c.id
                    consecutive.remove(c.id)
                    continue
                }
                val e = op.exit
                val spent = if (window == null) restartTimes.size else restartTimes.count { c.now - it < window }
                val k = if (e.ranFor >= p.backoffMaxNanos) 1 else (consecutive[c.id] ?: 0) + 1
                val expected = when {
                    gaveUp -> GiveUp
                    e.clean -> Retire(c.id)
                    spent >= p.maxRestarts -> GiveUp
                    else -> Restart(c.id, expectedDelay(p, k))
                }
                withClue("$c spent=$spent k=$k") { c.decision shouldBe expected }
                if (c.id in added && !e.clean) addedDecided++
                if (expected is Restart) consecutive[c.id] = k else consecutive.remove(c.id)
                if (expected is Restart) restartTimes += c.now
                if (expected == GiveUp) gaveUp = true
            }
        }
        addedDecided shouldBeGreaterThan 0 // added ids do fail in these runs
    }

    test("failed starts: every worker failing before it is ready gives up after the limit, with budget to spare") {
        val policy = RestartPolicy(maxRestarts = 100, startFailureLimit = 3)
        var s = policy.initial(2)
        var now = 0L
        fun exit(id: Int): RestartDecision {
            val (d, next) = policy.onExit(s, id, clean = false, ranForNanos = 5, nowNanos = ++now, ready = false)
            s = next
            return d
        }
        repeat(2) {
            exit(0) shouldBe Restart(0, 0)
            exit(1) shouldBe Restart(1, 0)
        }
        exit(0) shouldBe Restart(0, 0) // worker 1 has failed twice only
        exit(1) shouldBe GiveUp
        s.gaveUpReason shouldBe GiveUpReason.STARTS
        s.restarts shouldBe 5
        s.failedStarts shouldBe mapOf(0 to 3, 1 to 3)
    }

    test("failed starts: while one worker serves, another's failed starts are crashes under the budget") {
        val policy = RestartPolicy(maxRestarts = 4, startFailureLimit = 2)
        var s = policy.initial(2)
        var now = 0L
        repeat(2) { s = policy.onExit(s, 1, clean = false, ranForNanos = 5, nowNanos = ++now, ready = false).state }
        s = policy.onReady(s, 1) // its third start got ready
        s.failedStarts shouldBe emptyMap()
        repeat(2) {
            val (d, next) = policy.onExit(s, 0, clean = false, ranForNanos = 5, nowNanos = ++now, ready = false)
            d shouldBe Restart(0, 0)
            s = next
        }
        val (d, next) = policy.onExit(s, 0, clean = false, ranForNanos = 5, nowNanos = ++now, ready = false)
        d shouldBe GiveUp // the budget's fifth restart, not the failed starts
        next.gaveUpReason shouldBe GiveUpReason.RESTARTS
    }

    test("failed starts: an exit after ready counts from 0 again; a limit of 0 never gives up for them") {
        val policy = RestartPolicy(maxRestarts = 100, startFailureLimit = 2)
        var s = policy.initial(1)
        s = policy.onExit(s, 0, clean = false, ranForNanos = 5, nowNanos = 1, ready = false).state
        s = policy.onExit(s, 0, clean = false, ranForNanos = 5, nowNanos = 2, ready = true).state
        s.failedStarts shouldBe emptyMap()
        policy.onExit(s, 0, clean = false, ranForNanos = 5, nowNanos = 3, ready = false).decision shouldBe Restart(0, 0)
        val never = RestartPolicy(maxRestarts = 100, startFailureLimit = 0)
        var t = never.initial(1)
        repeat(50) { i ->
            val (d, next) = never.onExit(t, 0, clean = false, ranForNanos = 5, nowNanos = i.toLong(), ready = false)
            d shouldBe Restart(0, 0)
            t = next
        }
        shouldThrow<IllegalArgumentException> { RestartPolicy(maxRestarts = 1, startFailureLimit = -1) }.message shouldBe
            "startFailureLimit < 0: -1"
    }

    test("failed starts: with a backoff the budget alone decides, as it did before the rule") {
        val policy = RestartPolicy(maxRestarts = 5, backoffInitialNanos = 10, backoffMaxNanos = 1_000, startFailureLimit = 1)
        var s = policy.initial(1)
        repeat(5) { i ->
            val (d, next) = policy.onExit(s, 0, clean = false, ranForNanos = 0, nowNanos = i.toLong(), ready = false)
            d.shouldBeInstanceOf<Restart>()
            s = next
        }
        val (d, next) = policy.onExit(s, 0, clean = false, ranForNanos = 0, nowNanos = 9, ready = false)
        d shouldBe GiveUp
        next.gaveUpReason shouldBe GiveUpReason.RESTARTS
    }

    test("property: the policy gives up for failed starts exactly when every alive id failed its last startFailureLimit starts") {
        var gaveUpForStarts = 0
        val withStarts = arbitrary {
            val policy = policies.bind().let { RestartPolicy(it.maxRestarts + 20, it.restartWindowNanos, it.backoffInitialNanos, it.backoffMaxNanos, Arb.int(0..3).bind()) }
            // Each exit: clean or not, ready before it or not; now and then a worker says it is ready.
            val ops = Arb.list(arbitrary { Triple(Arb.int(0..1_000).bind(), Arb.int(0..5).bind(), Arb.int(0..9).bind() == 0) }, 0..60).bind()
            Triple(policy, Arb.int(1..4).bind(), ops)
        }
        checkAll(withStarts) { (policy, n, ops) ->
            var s = policy.initial(n)
            val model = mutableMapOf<Int, Int>()
            var now = 0L
            for ((pick, kind, readyEvent) in ops) {
                if (s.alive.isEmpty() || s.gaveUp) break
                val id = s.alive.sorted()[pick % s.alive.size]
                if (readyEvent) {
                    s = policy.onReady(s, id)
                    model.remove(id)
                    continue
                }
                val clean = kind == 0
                val ready = kind in 1..2
                val before = s
                val (d, next) = policy.onExit(s, id, clean, ranForNanos = 0, nowNanos = ++now, ready = ready)
                if (clean || ready) model.remove(id) else model.merge(id, 1, Int::plus)
                val expectStarts = !clean && !ready && policy.startFailureLimit > 0 && policy.backoffInitialNanos == 0L &&
                    before.alive.all { (model[it] ?: 0) >= policy.startFailureLimit }
                withClue("policy=$policy before=$before id=$id clean=$clean ready=$ready") {
                    (next.gaveUpReason == GiveUpReason.STARTS) shouldBe expectStarts
                    if (expectStarts) d shouldBe GiveUp
                    if (!expectStarts && !clean && d == GiveUp) next.gaveUpReason shouldBe GiveUpReason.RESTARTS
                    for (alive in next.alive) (next.failedStarts[alive] ?: 0) shouldBe (model[alive] ?: 0)
                }
                if (expectStarts) gaveUpForStarts++
                s = next
            }
        }
        gaveUpForStarts shouldBeGreaterThan 0 // the generator does reach the limit
    }
})
