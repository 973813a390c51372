package dev.prefork

import dev.prefork.supervisor.StartupArchive
import dev.prefork.testing.FixtureJvm
import dev.prefork.testing.ProcFs
import dev.prefork.testing.get
import dev.prefork.testing.kill
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldNotContain
import java.io.File
import java.nio.file.Files
import java.nio.file.Path
import java.util.jar.JarEntry
import java.util.jar.JarOutputStream
import kotlin.time.Duration.Companion.seconds

private const val FIXTURE = "dev.prefork.fixtures.ArchiveFixtureKt"

/** `ForkOptions.startupArchive`: workers that map a class-data archive their application trained. */
class StartupArchiveTest : FunSpec({
    val work = Files.createTempDirectory("prefork-archive-test")
    afterSpec { work.toFile().deleteRecursively() }

    /** This JVM's class path with every directory packed into a jar: the JVM archives classes from jars only. */
    val jarsOnly: String by lazy {
        System.getProperty("java.class.path").split(File.pathSeparator).filter { it.isNotEmpty() }.mapIndexed { i, entry ->
            val file = File(entry)
            if (!file.isDirectory) return@mapIndexed entry
            val jar = work.resolve("classes-$i.jar")
            JarOutputStream(Files.newOutputStream(jar)).use { out ->
                file.walkTopDown().filter { it.isFile }.forEach {
                    out.putNextEntry(JarEntry(it.relativeTo(file).invariantSeparatorsPath))
                    it.inputStream().use { input -> input.copyTo(out) }
                    out.closeEntry()
                }
            }
            jar.toString()
        }.joinToString(File.pathSeparator)
    }

    fun server(directory: Path, classPath: String = jarsOnly) = FixtureJvm(FIXTURE, listOf("archived", directory.toString()), classPath = classPath)

    fun FixtureJvm.workerPid(): Long = awaitLine(Regex("worker 0 pid (\\d+)")).groupValues[1].toLong()

    fun mapped(pid: Long, file: Path): Boolean = File("/proc/$pid/maps").readLines().any { it.endsWith(file.toString()) }

    test("a training run makes the archive once the first worker is up; later workers and later runs map it") {
        val directory = work.resolve("archives")
        val archive: Path
        server(directory).use { f ->
            val port = f.awaitLine(Regex("port (\\d+)")).groupValues[1].toInt()
            val first = f.workerPid()
            eventually(60.seconds) { f.stderr() shouldContain Regex("start-up archive \\S+ made in") }
            archive = Path.of(Regex("start-up archive (\\S+) made in").find(f.stderr())!!.groupValues[1])
            archive.parent shouldBe directory
            Files.isRegularFile(archive) shouldBe true
            kill(first, 9)
            val second = f.workerPid()
            mapped(second, archive) shouldBe true
            get(port, "/").toLong() shouldBe second
            f.signal(15)
            f.exitCode(30) shouldBe 0
            f.stderr() shouldNotContain "WARNING"
            f.stderr() shouldNotContain "[cds]"
        }
        server(directory).use { f ->
            f.awaitLine(Regex("port (\\d+)"))
            mapped(f.workerPid(), archive) shouldBe true
            Thread.sleep(1_000)
            f.stderr() shouldNotContain "training JVM"
        }
    }

    test("a corrupt archive is not a failure: workers start without it and print no CDS warning") {
        val directory = work.resolve("corrupt")
        val archive: Path
        server(directory).use { f ->
            eventually(60.seconds) { f.stderr() shouldContain Regex("start-up archive \\S+ made in") }
            archive = Path.of(Regex("start-up archive (\\S+) made in").find(f.stderr())!!.groupValues[1])
        }
        archive.toFile().setWritable(true)
        Files.write(archive, ByteArray(100_000) { it.toByte() })
        server(directory).use { f ->
            val port = f.awaitLine(Regex("port (\\d+)")).groupValues[1].toInt()
            val pid = f.workerPid()
            get(port, "/").toLong() shouldBe pid
            mapped(pid, archive) shouldBe false
            f.stderr() shouldNotContain "cds"
            f.stderr() shouldNotContain "shared archive"
        }
    }

    test("a supervisor that is done, or stopped, while its training runs leaves no training JVM and no half-made archive") {
        val directory = work.resolve("job")
        FixtureJvm(FIXTURE, listOf("archived-job", directory.toString()), classPath = jarsOnly).use { f ->
            f.exitCode(60) shouldBe 0
            Thread.sleep(1_000)
            f.process.descendants().filter { it.isAlive }.count() shouldBe 0L
        }
        Files.list(directory).use { files -> files.filter { it.toString().endsWith(".tmp") }.count() } shouldBe 0L
        val stopped = work.resolve("stopped")
        server(stopped).use { f ->
            f.workerPid()
            eventually(30.seconds) { f.stderr() shouldContain "training JVM" }
            val trainer = Regex("training JVM \\(pid (\\d+)\\)").find(f.stderr())!!.groupValues[1].toLong()
            f.signal(15)
            f.exitCode(30) shouldBe 0
            ProcFs.alive(trainer) shouldBe false
        }
        Files.list(stopped).use { files -> files.filter { it.toString().endsWith(".tmp") }.count() } shouldBe 0L
    }

    test("no archive for a launcher that is not java, or options read from a file; an archive name tells builds of one application apart") {
        val dir = work.resolve("unit")
        StartupArchive.of(listOf("/opt/app/bin/server", "--port=1"), dir) shouldBe null
        val java = Path.of(System.getProperty("java.home"), "bin", "java").toString()
        StartupArchive.of(listOf(java, "@options.txt", "-cp", "a.jar", "Main"), dir) shouldBe null
        StartupArchive.of(listOf(java, "-Xshare:off", "-cp", "a.jar", "Main"), dir) shouldBe null
    }

    test("an unusable archive directory, or a class path with directories, still starts workers, with one line saying why") {
        val notADirectory = work.resolve("a-file")
        Files.write(notADirectory, byteArrayOf(1))
        server(notADirectory).use { f ->
            val port = f.awaitLine(Regex("port (\\d+)")).groupValues[1].toInt()
            get(port, "/").toLong() shouldBe f.workerPid()
            f.stderr() shouldContain "start-up archive: off, $notADirectory is not a directory"
        }
        val shared = work.resolve("shared")
        Files.createDirectories(shared)
        shared.toFile().setWritable(true, false) // world-writable: another user could plant an archive
        server(shared).use { f ->
            val port = f.awaitLine(Regex("port (\\d+)")).groupValues[1].toInt()
            get(port, "/").toLong() shouldBe f.workerPid()
            f.stderr() shouldContain "start-up archive: off, the archive directory $shared is not this user's alone"
            Files.list(shared).use { it.count() } shouldBe 0L
        }
        server(work.resolve("unused"), classPath = System.getProperty("java.class.path")).use { f ->
            val port = f.awaitLine(Regex("port (\\d+)")).groupValues[1].toInt()
            get(port, "/").toLong() shouldBe f.workerPid()
            f.stderr() shouldContain "start-up archive: off, the class path holds what is not a jar"
            Files.exists(work.resolve("unused")) shouldBe false
        }
    }
})
