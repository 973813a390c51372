package consumer

import dev.prefork.Subprocess
import java.io.File
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.TimeUnit
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.fail
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout

/** Starts the app in a fresh JVM, as its user would, and reads what it printed. */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class AppTest {
    private val repository = Path.of(System.getProperty("app.repository")).toRealPath()

    @Test
    fun subprocessCapturesAndStreams() {
        val (stdout, stderr) = runApp("subprocess")
        assertEquals(listOf("run: rc=3 stdout=out stderr=err", "lines: [a, b, c] rc=0", "read: xyz rc=0"), stdout, "stderr $stderr")
    }

    @Test
    fun twoWorkersReportTheirTaskIds() {
        val (stdout, stderr) = runApp("fork")
        val ids = stdout.filter { it.startsWith("worker ") }.map { it.split(" ").let { w -> "${w[1]}/${w[2]}" } }.sorted()
        assertEquals(listOf("0/taskId=0", "1/taskId=1"), ids, "stdout $stdout, stderr $stderr")
    }

    @Test
    fun preforkIsTheJustBuiltArtifactFromTheBuildsOwnRepository() {
        val jar = Path.of(Subprocess::class.java.protectionDomain.codeSource.location.toURI()).toRealPath()
        assertTrue(jar.startsWith(repository.resolve("dev/prefork/prefork")), "$jar is not in $repository")
        assertFalse(jar.startsWith(Path.of(System.getProperty("user.home"), ".m2").toRealPath()), "$jar is in ~/.m2")
        for (entry in System.getProperty("app.classpath").split(File.pathSeparator)) {
            if ("dev/prefork" in entry) assertTrue(Path.of(entry).toRealPath().startsWith(repository), entry)
        }
    }

    /** The app's exit code must be 0, and its stderr free of any JVM or SLF4J warning. */
    private fun runApp(mode: String): Pair<List<String>, List<String>> {
        // A JVM keeps a signal it inherited as ignored (a build under nohup or in a shell's background
        // ignores SIGHUP and SIGINT), and the supervisor then rightly warns about it: start the app as
        // a shell in the foreground would, with the default dispositions. env execs the JVM.
        val command = listOf("env", "--default-signal=HUP,INT,TERM", Path.of(System.getProperty("java.home"), "bin", "java").toString()) +
            System.getProperty("app.jvmFlags").trim().split(Regex("\\s+")) +
            listOf("-cp", System.getProperty("app.classpath"), "consumer.AppKt", mode)
        val stdout = Files.createTempFile("app-stdout", ".txt")
        val stderr = Files.createTempFile("app-stderr", ".txt")
        val process = ProcessBuilder(command).redirectOutput(stdout.toFile()).redirectError(stderr.toFile()).start()
        try {
            if (!process.waitFor(2, TimeUnit.MINUTES)) {
                fail<Unit>("the app did not exit within 2 minutes: ${Files.readAllLines(stdout)} ${Files.readAllLines(stderr)}")
            }
            val out = Files.readAllLines(stdout) to Files.readAllLines(stderr)
            assertEquals(0, process.exitValue(), "$out")
            for (line in out.second) {
                assertFalse("WARNING" in line || " WARN " in line || "SLF4J(" in line, "stderr: ${out.second}")
            }
            return out
        } finally {
            // workers first: they are the supervisor's children
            process.descendants().forEach { it.destroyForcibly() }
            process.destroyForcibly()
            process.waitFor(30, TimeUnit.SECONDS)
            Files.deleteIfExists(stdout)
            Files.deleteIfExists(stderr)
        }
    }
}
