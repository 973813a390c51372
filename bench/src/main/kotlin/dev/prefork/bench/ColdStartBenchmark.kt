package dev.prefork.bench

import dev.prefork.Subprocess
import java.io.File
import java.util.concurrent.TimeUnit

/**
 * The first spawn + reap of `/bin/true` in a fresh JVM, as a command-line tool or a
 * supervisor pays it at every start: prefork (binding its C calls, starting its reactor)
 * against `ProcessBuilder`, each timed inside its own new JVM from just before the call to
 * just after the exit status is known. The JVMs are started with the same flags, taking turns.
 */
internal object ColdStartBenchmark : Benchmark {
    override val name = "coldstart"
    override val summary = "first spawn + reap in a fresh JVM, prefork vs ProcessBuilder (target ratio <= 2.0 on JDK 22+)"

    private const val TARGET = 2.0

    /** The binding this benchmark was asked for (-Dprefork.native=...), passed on so a fall-back can be measured too. */
    private val binding = listOfNotNull(System.getProperty("prefork.native")?.let { "-Dprefork.native=$it" })

    override fun run(settings: Settings) {
        println("  one fresh JVM per round and variant (${(listOf("--enable-native-access=ALL-UNNAMED") + binding).joinToString(" ")}, nothing else), timed inside it")
        val (ours, theirs) = settings.rounds().measure(
            listOf(
                Rounds.Variant("prefork Subprocess start+waitForExit") { firstSpawnMillis("prefork") },
                Rounds.Variant("ProcessBuilder start+waitFor") { firstSpawnMillis("processbuilder") },
            ),
        )
        report(ours, "ms", 1, cpuPer = 1.0, cpuUnit = "ms (this JVM's, not the child's)")
        report(theirs, "ms", 1, cpuPer = 1.0, cpuUnit = "ms (this JVM's, not the child's)")
        ratio("prefork/ProcessBuilder, first spawn", ours.median / theirs.median, TARGET, lowerIsBetter = true)
    }

    private fun firstSpawnMillis(mode: String): Double {
        val java = File(System.getProperty("java.home"), "bin/java").path
        val jvm = ProcessBuilder(
            listOf(java, "--enable-native-access=ALL-UNNAMED") + binding +
                listOf("-cp", System.getProperty("java.class.path"), "dev.prefork.bench.ColdStartBenchmark\$Main", mode),
        ).redirectError(ProcessBuilder.Redirect.INHERIT).start()
        try {
            val out = jvm.inputStream.bufferedReader().readText().trim()
            check(jvm.waitFor(60, TimeUnit.SECONDS) && jvm.exitValue() == 0) { "cold-start JVM ($mode) failed: $out" }
            return out.toDouble()
        } finally {
            jvm.killIfRunning()
        }
    }

    /** The measured JVM: one spawn of /bin/true, through the Java facade or ProcessBuilder; prints its milliseconds. */
    object Main {
        @JvmStatic
        fun main(args: Array<String>) {
            val start = System.nanoTime()
            if (args[0] == "prefork") {
                // As Java calls it: start() and waitForExit() are startDetached() and waitForExitBlocking() in Kotlin.
                val child = Subprocess.builder("/bin/true").startDetached()
                try {
                    check(child.waitForExitBlocking() == 0)
                } finally {
                    child.close()
                }
            } else {
                check(ProcessBuilder("/bin/true").start().waitFor() == 0)
            }
            println((System.nanoTime() - start) / 1e6)
        }
    }
}
