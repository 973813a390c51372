package dev.prefork

import dev.prefork.testing.FixtureJvm
import dev.prefork.testing.ProcFs
import dev.prefork.testing.Load
import dev.prefork.testing.kill
import dev.prefork.testing.get
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContain
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.ints.shouldBeInRange
import io.kotest.matchers.ints.shouldBeLessThanOrEqual
import io.kotest.matchers.longs.shouldBeGreaterThanOrEqual
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldNotContain
import java.io.IOException
import java.nio.file.Files
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import java.util.jar.Attributes
import java.util.jar.JarOutputStream
import java.util.jar.Manifest
import kotlin.time.Duration.Companion.seconds

private const val FIXTURE = "dev.prefork.fixtures.ForkFixtureKt"

class ForkProcessesTest : FunSpec({
    fun fixture(vararg args: String, jar: java.nio.file.Path? = null, jvmFlags: List<String> = emptyList()) =
        FixtureJvm(FIXTURE, args.toList(), jar = jar, jvmFlags = jvmFlags)

    test("Tornado's test_multi_process: restarts on status 2, 3 and 4, none on 0, supervisor exits 0") {
        fixture("multi").use { f ->
            f.exitCode(120) shouldBe 0
            val log = f.stderr()
            log shouldContain "Starting 3 processes"
            log shouldContain Regex("child [01] \\(pid \\d+\\) exited with status 2, restarting")
            log shouldContain Regex("child [01] \\(pid \\d+\\) exited with status 3, restarting")
            log shouldContain Regex("child [01] \\(pid \\d+\\) exited with status 4, restarting")
            Regex("child \\d \\(pid \\d+\\) exited normally").findAll(log).count() shouldBe 3
            f.stdout() shouldContain "client done"
            log shouldNotContain "WARNING"
        }
    }

    test("kill -9 of the supervisor leaves no worker behind") {
        fixture("idle", "2").use { f ->
            val pids = (0 until 2).map { f.awaitLine(Regex("worker \\d pid (\\d+)")).groupValues[1].toLong() }
            pids.forEach { ProcFs.alive(it) shouldBe true }
            f.process.destroyForcibly()
            eventually(3.seconds) {
                pids.forEach { ProcFs.alive(it) shouldBe false }
            }
        }
    }

    test("a crash loop gives up with a non-zero exit, stopping the survivors first") {
        fixture("crash", "2", "2").use { f ->
            f.exitCode(60) shouldNotBe 0
            f.stderr() shouldContain "Too many child restarts, giving up"
            val pids = Regex("worker \\d pid (\\d+)").findAll(f.stdout()).map { it.groupValues[1].toLong() }.toList()
            pids.size shouldBe 4 // worker 1 once, worker 0 three times (two restarts)
            pids.forEach { ProcFs.alive(it) shouldBe false }
        }
    }

    test("workers that all fail before they are ready: the supervisor gives up after startFailureLimit rounds, with budget left, and says why") {
        fixture("fail-start", "2").use { f ->
            f.exitCode(60) shouldNotBe 0
            f.stderr() shouldContain "every worker failed its last 3 starts in a row"
            f.stderr() shouldContain "TooManyRestartsException: Too many child restarts, giving up: every worker failed"
            val starts = Regex("worker (\\d) pid (\\d+)").findAll(f.stdout()).map { it.groupValues[1].toInt() to it.groupValues[2].toLong() }.toList()
            // Three starts of each, where maxRestarts (100) would allow 101; the id that got to three first may start a fourth
            // time before the other's third failure arrives (it is stopped then).
            starts.groupingBy { it.first }.eachCount().values.forEach { it shouldBeInRange 3..4 }
            starts.size shouldBeInRange 6..7
            starts.forEach { ProcFs.alive(it.second) shouldBe false }
        }
    }

    test("backoff delays each consecutive restart, and the listener sees every start and exit") {
        fixture("crash", "2", "3", "200").use { f ->
            val started = System.nanoTime()
            f.exitCode(60) shouldNotBe 0
            // 200 + 400 + 800 ms of backoff at the least before the fourth failure gives up
            (System.nanoTime() - started) / 1_000_000 shouldBeGreaterThanOrEqual 1400L
            val events = f.stdout().lines().filter { it.startsWith("event ") }
            events.count { Regex("event child 0 \\(pid \\d+\\) started").matches(it) } shouldBe 4
            events.count { Regex("event child 0 \\(pid \\d+\\) exited with status 3, restarting").matches(it) } shouldBe 3
            events.count { Regex("event child 0 \\(pid \\d+\\) exited with status 3").matches(it) } shouldBe 1
        }
    }

    test("SIGTERM stops gracefully; a worker that ignores it is killed after gracefulTimeout") {
        fixture("serve", "2", "ignore-term", "500").use { f ->
            val port = f.awaitLine(Regex("port (\\d+)")).groupValues[1].toInt()
            val pids = (0 until 2).map { f.awaitLine(Regex("worker \\d pid (\\d+)")).groupValues[1].toLong() }
            pids shouldContain get(port, "/").toLong()
            f.signal(15)
            f.exitCode(30) shouldBe 0
            f.stderr() shouldContain "did not stop within PT0.5S, killing it"
            pids.forEach { ProcFs.alive(it) shouldBe false }
        }
    }

    test("each SIGHUP replaces workers one at a time without a failed request") {
        fixture("serve", "2").use { f ->
            val port = f.awaitLine(Regex("port (\\d+)")).groupValues[1].toInt()
            val before = (0 until 2).map { f.awaitLine(Regex("worker \\d pid (\\d+)")).groupValues[1].toLong() }.toSet()
            val load = Load(port, clients = 4)
            load.use {
                var previous = before
                for (round in 1..2) { // every SIGHUP rolls, not just the first
                    Thread.sleep(300)
                    f.signal(1)
                    val after = (0 until 2).map { f.awaitLine(Regex("worker \\d pid (\\d+)")).groupValues[1].toLong() }.toSet()
                    eventually(20.seconds) { Regex("rolling restart done").findAll(f.stderr()).count() shouldBe round }
                    Thread.sleep(300)
                    (after intersect previous) shouldBe emptySet()
                    previous.forEach { ProcFs.alive(it) shouldBe false }
                    previous = after
                }
            }
            load.failures.get() shouldBe 0
            load.served.get() shouldNotBe 0
        }
    }

    test("a server that does nothing on SIGTERM loses no request across two SIGHUPs: it stops accepting, then drains") {
        // 300 ms per request and 8 clients: every SIGTERM finds requests in flight in the old worker.
        fixture("naive", "2", "300").use { f ->
            val port = f.awaitLine(Regex("port (\\d+)")).groupValues[1].toInt()
            var previous = (0 until 2).map { f.awaitLine(Regex("worker \\d pid (\\d+)")).groupValues[1].toLong() }.toSet()
            val load = Load(port, clients = 8)
            load.use {
                for (round in 1..2) {
                    Thread.sleep(500)
                    f.signal(1)
                    val after = (0 until 2).map { f.awaitLine(Regex("worker \\d pid (\\d+)")).groupValues[1].toLong() }.toSet()
                    eventually(30.seconds) { Regex("rolling restart done").findAll(f.stderr()).count() shouldBe round }
                    (after intersect previous) shouldBe emptySet()
                    previous.forEach { ProcFs.alive(it) shouldBe false }
                    previous = after
                }
                Thread.sleep(300)
            }
            load.failures.get() shouldBe 0
            load.served.get() shouldBeGreaterThan 100
            Regex("worker \\d stop-accepting action").findAll(f.stdout()).count() shouldBe 4
            Regex("worker \\d: SIGTERM, stopped accepting").findAll(f.stderr()).count() shouldBe 4
        }
    }

    test("inheritedChannel(true): each worker's System.inheritedChannel() is the shared socket, drained on SIGHUP, its output kept") {
        fixture("naive", "2", "300", "inherited").use { f ->
            val port = f.awaitLine(Regex("port (\\d+)")).groupValues[1].toInt()
            val lines = (0 until 2).map { f.awaitLine(Regex("worker \\d pid (\\d+) serving (\\S+) bound (\\S+)")) }
            lines.forEach {
                it.groupValues[2] shouldBe "/127.0.0.1:$port"
                it.groupValues[3] shouldBe "/127.0.0.1:$port"
            }
            val load = Load(port, clients = 8)
            load.use {
                Thread.sleep(500)
                f.signal(1)
                eventually(30.seconds) { f.stderr() shouldContain "rolling restart done" }
                Thread.sleep(300)
            }
            load.failures.get() shouldBe 0
            load.served.get() shouldBeGreaterThan 50
            lines.forEach { ProcFs.alive(it.groupValues[1].toLong()) shouldBe false }
            // Closing the inherited channel makes the JDK point fds 1 and 2 at /dev/null; prefork puts them back.
            Regex("worker \\d stop-accepting action").findAll(f.stdout()).count() shouldBe 2
            Regex("worker \\d: SIGTERM, stopped accepting").findAll(f.stderr()).count() shouldBe 2
        }
    }

    test("inheritedChannel(true) without a shared socket bound before the fork fails at once and starts nothing") {
        fixture("inherited-unbound").use { f ->
            f.awaitLine(Regex("error: (.*)")).groupValues[1] shouldBe
                "ForkOptions.inheritedChannel(true) needs a socket bound with bindSockets (reusePort = false) before forkProcesses"
            f.awaitLine(Regex("fds leaked: (.*)")).groupValues[1] shouldBe "0"
            f.exitCode() shouldBe 0
            f.stderr() shouldNotContain "Starting 2 processes"
            f.stdout() shouldNotContain "forked"
        }
    }

    test("explicitReady: a rolling restart stops the old worker only after its replacement called Worker.ready()") {
        fixture("ready", "1", "1500", "20000").use { f ->
            val old = f.awaitLine(Regex("worker 0 pid (\\d+)")).groupValues[1].toLong()
            f.awaitLine(Regex("event child 0 \\(pid $old\\) ready"))
            f.signal(1)
            val fresh = f.awaitLine(Regex("worker 0 pid (\\d+)")).groupValues[1].toLong()
            f.awaitLine(Regex("event child 0 \\(pid $old\\) exited"), seconds = 30)
            val events = f.stdout().lines().filter { it.startsWith("event ") }
            events.indexOf("event child 0 (pid $fresh) ready") shouldBeGreaterThan events.indexOf("event child 0 (pid $fresh) started")
            events.indexOfFirst { it.startsWith("event child 0 (pid $old) exited") } shouldBeGreaterThan
                events.indexOf("event child 0 (pid $fresh) ready")
            eventually(10.seconds) { f.stderr() shouldContain "rolling restart done" }
        }
    }

    test("a replacement not ready within readyTimeout is stopped, and the old worker keeps serving") {
        fixture("ready", "1", "-1", "1500").use { f ->
            val port = f.awaitLine(Regex("port (\\d+)")).groupValues[1].toInt()
            val old = f.awaitLine(Regex("worker 0 pid (\\d+)")).groupValues[1].toLong()
            f.signal(1)
            val fresh = f.awaitLine(Regex("worker 0 pid (\\d+)")).groupValues[1].toLong()
            f.awaitLine(Regex("event child 0 \\(pid $fresh\\) exited"), seconds = 30)
            f.stderr() shouldContain "child 0's replacement (pid $fresh) was not ready within PT1.5S; stopping it, pid $old keeps serving"
            ProcFs.alive(old) shouldBe true
            (0 until 5).forEach { get(port, "/").toLong() shouldBe old }
            f.stderr() shouldNotContain "rolling restart done"
        }
    }

    test("a worker killed -9 under load costs only the requests it had accepted") {
        fixture("serve", "2").use { f ->
            val port = f.awaitLine(Regex("port (\\d+)")).groupValues[1].toInt()
            val pids = (0 until 2).map { f.awaitLine(Regex("worker (\\d) pid (\\d+)")) }
                .associate { it.groupValues[1].toInt() to it.groupValues[2].toLong() }
            val load = Load(port, clients = 4)
            load.use {
                Thread.sleep(300)
                kill(pids.getValue(0), 9)
                f.awaitLine(Regex("worker 0 pid (\\d+)")) // the replacement
                Thread.sleep(500)
            }
            // A single-threaded worker holds at most one accepted connection; the rest wait in the shared queue.
            load.failures.get() shouldBeLessThanOrEqual 1
            load.served.get() shouldNotBe 0
            f.stderr() shouldContain Regex("child 0 \\(pid ${pids.getValue(0)}\\) killed by signal 9, restarting")
            f.stdout() shouldContain "event child 0 (pid ${pids.getValue(0)}) killed by signal 9, restarting"
        }
    }

    test("sockets bound before the fork reach every worker, any number of them, in order; reusePort binds per worker") {
        fixture("sockets").use { f ->
            val lines = (0 until 2).map { f.awaitLine(Regex("worker (\\d) sockets (\\S+) (\\S+) (\\S+) twice: (.*)")) }
            lines.map { it.groupValues[2] }.toSet() shouldHaveSize 1 // same address and port in both workers
            lines.map { it.groupValues[3] }.toSet() shouldHaveSize 1
            lines.map { it.groupValues[4] }.toSet() shouldHaveSize 1
            lines.forEach { it.groupValues[5] shouldBe "forkProcesses was already called in this process" }
            val port = lines[0].groupValues[2].substringAfterLast(':').toInt()
            val reusePort = lines[0].groupValues[4].substringAfterLast(':').toInt()
            val ids = (0 until 40).map { get(port, "/id").split(" ")[0] }.toSet()
            ids shouldBe setOf("0", "1")
            (0 until 10).forEach { get(reusePort, "/id") }
            f.stderr() shouldNotContain "WARNING"
        }
    }

    test("ForkOptions.workerCommand starts workers with the given command instead of re-executing") {
        fixture("custom-command", "from-cmdline").use { f ->
            val lines = (0 until 2).map { f.awaitLine(Regex("worker (\\d) started as (.*)")) }
            lines.map { it.groupValues[1] }.toSet() shouldBe setOf("0", "1")
            lines.forEach { it.groupValues[2] shouldBe "from-workerCommand" }
            f.exitCode() shouldBe 0
        }
    }

    test("a JVM that merely inherited a worker's variables is no worker") {
        val leaked = mapOf("PREFORK_TASK_ID" to "1", "PREFORK_CONTROL_FDS" to "3,4", "PREFORK_WATCH_PIPE" to "pipe:[1]")
        FixtureJvm(FIXTURE, listOf("whoami"), environment = leaked).use { f ->
            f.awaitLine(Regex("taskId=(.*)")).groupValues[1] shouldBe "null"
            f.exitCode() shouldBe 0
        }
    }

    test("re-execution keeps empty and spaced arguments, from -cp and from -jar") {
        fixture("args", "", "a b", "c", jvmFlags = listOf("--add-opens=java.base/java.lang=ALL-UNNAMED")).use { f ->
            // the worker's start-up path binds no C function (jnr or FFM: a tenth to half a second of start-up)
            f.awaitLine(Regex("worker 0 native bindings loaded: (.*)")).groupValues[1] shouldBe "[]"
            f.awaitLine(Regex("worker 0 args (.*)")).groupValues[1] shouldBe "<>|<a b>|<c>"
            f.exitCode() shouldBe 0
        }
        val jar = Files.createTempFile("prefork-fixture", ".jar")
        try {
            val manifest = Manifest().apply {
                mainAttributes[Attributes.Name.MANIFEST_VERSION] = "1.0"
                mainAttributes[Attributes.Name.MAIN_CLASS] = FIXTURE
                mainAttributes[Attributes.Name.CLASS_PATH] = classPathOfThisJvm().joinToString(" ") { it.toUri().toString() }
            }
            JarOutputStream(Files.newOutputStream(jar), manifest).close()
            fixture("args", "", "x", jar = jar, jvmFlags = listOf("--add-opens=java.base/java.lang=ALL-UNNAMED")).use { f ->
                f.awaitLine(Regex("worker 0 args (.*)")).groupValues[1] shouldBe "<>|<x>"
                f.exitCode() shouldBe 0
            }
        } finally {
            Files.delete(jar)
        }
    }
})

/** This JVM's class path, expanded from Surefire's manifest-only jar when it uses one. */
private fun classPathOfThisJvm(): List<java.nio.file.Path> =
    System.getProperty("java.class.path").split(java.io.File.pathSeparator).flatMap { entry ->
        val path = java.nio.file.Path.of(entry)
        val manifestPath = if (entry.endsWith(".jar")) {
            java.util.jar.JarFile(entry).use { it.manifest?.mainAttributes?.getValue(Attributes.Name.CLASS_PATH) }
        } else {
            null
        }
        if (manifestPath == null) {
            listOf(path)
        } else {
            listOf(path) + manifestPath.split(" ").filter { it.isNotBlank() }.map { java.nio.file.Path.of(java.net.URI(it)) }
        }
    }
