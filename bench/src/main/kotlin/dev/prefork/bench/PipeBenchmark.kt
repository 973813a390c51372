package dev.prefork.bench

import dev.prefork.Redirect
import dev.prefork.Subprocess
import kotlinx.coroutines.runBlocking
import java.lang.management.ManagementFactory

/**
 * Throughput of a child's stdout: `head -c N /dev/zero` read through prefork's
 * [dev.prefork.PipeReader.channel], against the same bytes piped by the shell into
 * `cat > /dev/null` (no JVM in the data path: the ceiling) and read by `ProcessBuilder`'s
 * InputStream. Every variant is timed on the wall clock from spawn to reap, and the JVM
 * readers check that they got exactly N bytes.
 */
internal object PipeBenchmark : Benchmark {
    override val name = "pipe"
    override val summary = "1 GiB (bench.pipeBytes) through a child's stdout, prefork vs shell pipe vs ProcessBuilder " +
        "(targets: channel >= 0.9 of the shell, inputStream() >= 1.0 of ProcessBuilder's)"

    private const val TARGET = 0.9
    private const val STREAM_TARGET = 1.0
    private const val READ_BUFFER = 64 * 1024

    override fun run(settings: Settings) {
        val bytes = settings.pipeBytes
        println("  $bytes bytes per round; both InputStreams are read with a ${READ_BUFFER / 1024} KiB buffer")
        val chunks = ChunkStats()
        val results = settings.rounds().measure(
            listOf(
                Rounds.Variant("prefork stdout.channel") { gbPerSecond(bytes) { prefork(bytes, chunks) } },
                Rounds.Variant("prefork stdout.read(buffer)") { gbPerSecond(bytes) { preforkRead(bytes) } },
                Rounds.Variant("prefork stdout().inputStream()") { gbPerSecond(bytes) { preforkStream(bytes) } },
                Rounds.Variant("shell: head | cat > /dev/null") { gbPerSecond(bytes) { shell(bytes) } },
                Rounds.Variant("ProcessBuilder InputStream") { gbPerSecond(bytes) { processBuilder(bytes) } },
            ),
        )
        val (ours, read, stream, shell, jdk) = results
        results.forEach { report(it, "GB/s", 2, cpuPer = 1000.0, cpuUnit = "s/run") }
        println("  (channel/ProcessBuilder = ${(ours.median / jdk.median).format(2)}; channel: $chunks)")
        ratio("prefork channel/shell", ours.median / shell.median, TARGET, lowerIsBetter = false)
        // Not a target of its own: the reader's array instead of a new one per chunk, which is what the channel pays for.
        ratio("prefork read(buffer)/shell", read.median / shell.median, TARGET, lowerIsBetter = false)
        ratio("prefork inputStream()/ProcessBuilder InputStream", stream.median / jdk.median, STREAM_TARGET, lowerIsBetter = false)
    }

    /** How prefork's pump cut the stream, and the collections that cost: the first places to look when it is slow. */
    private class ChunkStats {
        var runs = 0
        var chunks = 0L
        var bytes = 0L
        var largest = 0
        var collections = 0L

        override fun toString(): String {
            if (runs == 0) return "no complete run"
            val perRun = chunks / runs
            return "$perRun chunks per run, mean ${bytes / chunks / 1024} KiB, largest ${largest / 1024} KiB, " +
                "${collections / runs} GCs per run"
        }
    }

    private inline fun gbPerSecond(bytes: Long, body: () -> Unit): Double = bytes / millis(body) / 1e6

    private fun head(bytes: Long) = listOf("head", "-c", bytes.toString(), "/dev/zero")

    private fun collections(): Long = ManagementFactory.getGarbageCollectorMXBeans().sumOf { maxOf(0L, it.collectionCount) }

    private fun prefork(bytes: Long, stats: ChunkStats) = runBlocking {
        val process = Subprocess.builder(head(bytes)).stdout(Redirect.STREAM).startDetached()
        val collectionsBefore = collections()
        try {
            var total = 0L
            var chunks = 0L
            var largest = 0
            for (chunk in process.stdout!!.channel) {
                total += chunk.size
                chunks++
                if (chunk.size > largest) largest = chunk.size
            }
            check(total == bytes) { "prefork read $total bytes, expected $bytes" }
            process.waitForExit()
            stats.runs++
            stats.chunks += chunks
            stats.bytes += total
            stats.largest = maxOf(stats.largest, largest)
            stats.collections += collections() - collectionsBefore
        } finally {
            process.killIfRunning()
        }
    }

    /** Kotlin's way without a new array per chunk: the suspending read into one 64 KiB buffer. */
    private fun preforkRead(bytes: Long) = runBlocking {
        val process = Subprocess.builder(head(bytes)).stdout(Redirect.STREAM).startDetached()
        try {
            val stdout = process.stdout!!
            val buffer = ByteArray(READ_BUFFER)
            var total = 0L
            while (true) {
                val count = stdout.read(buffer)
                if (count < 0) break
                total += count
            }
            check(total == bytes) { "prefork read(buffer) read $total bytes, expected $bytes" }
            process.waitForExit()
        } finally {
            process.killIfRunning()
        }
    }

    /** The Java facade's way: a blocking InputStream, read as the ProcessBuilder variant reads its own. */
    private fun preforkStream(bytes: Long) {
        val process = Subprocess.builder(head(bytes)).stdout(Redirect.STREAM).startDetached()
        try {
            check(drain(process.stdout!!.inputStream()) == bytes) { "prefork inputStream() read other than $bytes bytes" }
            process.waitForExitBlocking()
        } finally {
            process.killIfRunning()
        }
    }

    private fun drain(input: java.io.InputStream): Long {
        var total = 0L
        val buffer = ByteArray(READ_BUFFER)
        input.use {
            while (true) {
                val count = it.read(buffer)
                if (count < 0) break
                total += count
            }
        }
        return total
    }

    private fun shell(bytes: Long) {
        val process = ProcessBuilder("sh", "-c", "head -c $bytes /dev/zero | cat > /dev/null").inheritIO().start()
        try {
            check(process.waitFor() == 0) { "shell pipeline exited ${process.exitValue()}" }
        } finally {
            process.killIfRunning()
        }
    }

    private fun processBuilder(bytes: Long) {
        val process = ProcessBuilder(head(bytes))
            .redirectInput(ProcessBuilder.Redirect.INHERIT)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start()
        try {
            val total = drain(process.inputStream)
            check(total == bytes) { "ProcessBuilder read $total bytes, expected $bytes" }
            check(process.waitFor() == 0) { "head exited ${process.exitValue()}" }
        } finally {
            process.killIfRunning()
        }
    }
}
