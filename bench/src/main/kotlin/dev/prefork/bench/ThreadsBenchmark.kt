package dev.prefork.bench

import dev.prefork.Subprocess

/**
 * Threads that live children cost: start [Settings.children] `sleep 30` children with default
 * redirects, count the JVM threads that appeared while they all run, then kill them all and
 * wait. prefork first, then ProcessBuilder (one "process reaper" thread per live child).
 *
 * Added threads are counted by identity (alive now, not alive at the baseline), so an idle
 * pool thread that dies meanwhile cannot hide a new one. One round only: ProcessBuilder's reaper
 * pool keeps idle threads for a minute, so a second round would reuse the first round's.
 */
internal object ThreadsBenchmark : Benchmark {
    override val name = "threads"
    override val summary = "threads added by N live `sleep 30` children, prefork vs ProcessBuilder (target: prefork adds <= 4)"

    private const val TARGET = 4
    private const val SETTLE_MILLIS = 500L
    private val SLEEP = listOf("sleep", "30")

    override fun run(settings: Settings) {
        val n = settings.children
        warmUp()
        // Signal every child first, then wait for each: stopping 300 one by one would take longer.
        val prefork = measure("prefork", n, start = { Subprocess.builder(SLEEP).startDetached() }) { children ->
            children.forEach { runCatching { it.kill() } }
            children.forEach { it.killIfRunning() }
        }
        val jdk = measure("ProcessBuilder", n, start = { ProcessBuilder(SLEEP).start() }) { children ->
            children.forEach { runCatching { it.destroyForcibly() } }
            children.forEach { it.killIfRunning() }
        }
        val ok = prefork <= TARGET
        println(
            "  RATIO prefork/ProcessBuilder threads added = $prefork/$jdk = ${(prefork.toDouble() / jdk).format(3)}" +
                "   (target: prefork adds <= $TARGET: ${if (ok) "met" else "MISSED"})",
        )
    }

    /** Loads jnr and starts prefork's reactor, and lets ProcessBuilder start its reaper pool, before the baseline. */
    private fun warmUp() {
        repeat(3) {
            Subprocess.builder("/bin/true").startDetached().waitForExitBlocking()
            ProcessBuilder("/bin/true").start().waitFor()
        }
        val killed = Subprocess.builder(SLEEP).startDetached()
        try {
            killed.kill()
            killed.waitForExitBlocking(false)
        } finally {
            killed.killIfRunning()
        }
    }

    /** Starts [n] children with [start], reports the threads they added, and always runs [stopAll] on whatever was started. */
    private fun <P> measure(label: String, n: Int, start: () -> P, stopAll: (List<P>) -> Unit): Int {
        val before = Thread.getAllStackTraces().keys
        val children = ArrayList<P>(n)
        val added: Set<Thread>
        val live: Int
        try {
            repeat(n) { children += start() }
            Thread.sleep(SETTLE_MILLIS)
            val during = Thread.getAllStackTraces().keys
            added = during - before
            live = during.size
        } finally {
            stopAll(children)
        }
        val after = Thread.getAllStackTraces().keys.size
        println(
            "  %-15s %4d threads added by %d live children   (live threads: %d before, %d during, %d after exit)"
                .format(label, added.size, children.size, before.size, live, after),
        )
        if (added.isNotEmpty()) println("                  added: ${describe(added)}")
        return added.size
    }

    /** "process reaper x300, prefork-reactor x1": names with trailing numbers folded together. */
    private fun describe(threads: Set<Thread>): String =
        threads.groupingBy { it.name.replace(Regex("[-#\\s]*\\d+$"), "") }.eachCount()
            .entries.sortedByDescending { it.value }
            .joinToString { "${it.key} x${it.value}" }
}
