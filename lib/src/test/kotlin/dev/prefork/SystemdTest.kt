package dev.prefork

import dev.prefork.testing.FixtureJvm
import dev.prefork.testing.get
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldNotContain
import java.net.ServerSocket
import java.nio.file.Files
import java.util.concurrent.Executors
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.concurrent.thread
import kotlin.time.Duration.Companion.seconds

private const val FIXTURE = "dev.prefork.fixtures.SystemdFixtureKt"

/** Debian's systemd package; CI installs it. */
private const val SOCKET_ACTIVATE = "systemd-socket-activate"

/**
 * systemd's protocols with the real tools: `systemd-socket-activate` passes a listening socket
 * the way a `.socket` unit does (it binds, waits for the first connection, then execs the
 * service with `LISTEN_FDS`), and a datagram socket of the test's own stands in for systemd's
 * `NOTIFY_SOCKET`.
 */
class SystemdTest : FunSpec({
    fun freePort(): Int = ServerSocket(0).use { it.localPort }

    /** The request that wakes the service: retried while the tool is not listening yet (connection refused). */
    fun wake(port: Int, path: String): String {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20)
        while (true) {
            try {
                return get(port, path, timeoutMillis = 60_000)
            } catch (e: java.net.ConnectException) {
                if (System.nanoTime() > deadline) throw e
                Thread.sleep(50)
            }
        }
    }

    /** The fixture as a socket-activated service; adopting the socket takes the same flag in the supervisor as in a worker. */
    fun activated(port: Int, asked: Int, addOpens: Boolean = true) = FixtureJvm(
        FIXTURE,
        listOf("systemd", asked.toString(), "2"),
        jvmFlags = if (addOpens) listOf("--add-opens=java.base/sun.nio.ch=ALL-UNNAMED") else emptyList(),
        launcher = listOf(SOCKET_ACTIVATE, "-l", "127.0.0.1:$port", "--fdname=web"),
    )

    /** A service that fails in its bindSockets, woken by a first connection: exit 3 and the message on stdout. */
    fun failsToBind(port: Int, asked: Int, addOpens: Boolean, message: String) {
        activated(port, asked, addOpens).use { f ->
            thread(isDaemon = true) { runCatching { wake(port, "/") } }
            f.exitCode(60) shouldBe 3
            f.stdout() shouldContain "bindSockets failed: $message"
        }
    }

    beforeSpec {
        check(ProcessBuilder("sh", "-c", "command -v $SOCKET_ACTIVATE").start().waitFor() == 0) {
            "$SOCKET_ACTIVATE is not installed (Debian package systemd): these tests need it"
        }
    }

    test("socket activation: the supervisor serves on the socket systemd passed; workers and children inherit none of its variables") {
        val port = freePort()
        activated(port, port).use { f ->
            val pool = Executors.newSingleThreadExecutor()
            try {
                // The tool starts the service on the first connection, which waits in the socket's accept queue meanwhile.
                val first = pool.submit<String> { wake(port, "/id") }
                val supervisor = f.awaitLine(Regex("supervisor pid (\\d+) socket /127\\.0\\.0\\.1:(\\d+)"), seconds = 60)
                supervisor.groupValues[2].toInt() shouldBe port
                first.get(60, TimeUnit.SECONDS) shouldContain Regex("^[01] \\d+$")
                repeat(2) {
                    f.awaitLine(Regex("worker [01] pid \\d+ saw (.*)")).groupValues[1] shouldBe
                        "LISTEN_PID=null LISTEN_FDS=null LISTEN_FDNAMES=null NOTIFY_SOCKET=null WATCHDOG_USEC=null; " +
                        "its child saw LISTEN_FDS=unset LISTEN_PID=unset"
                }
                val ids = HashSet<String>()
                eventually(20.seconds) {
                    ids += get(port, "/id").substringBefore(' ')
                    ids shouldBe setOf("0", "1")
                }
                f.stderr() shouldContain "socket activation: systemd passed fd 3 \"web\" 127.0.0.1:$port"
            } finally {
                pool.shutdownNow()
            }
        }
    }

    test("an activation with no socket for the address asked is an error naming both") {
        val port = freePort()
        val other = freePort()
        failsToBind(
            port, other, addOpens = true,
            "bindSockets($other, \"127.0.0.1\"): systemd passed no socket for 127.0.0.1:$other; it passed fd 3 \"web\" 127.0.0.1:$port (LISTEN_FDS=1)",
        )
    }

    test("without --add-opens for sun.nio.ch the supervisor cannot adopt the socket, and says which flag it needs") {
        val port = freePort()
        failsToBind(
            port, port, addOpens = false,
            "bindSockets($port, \"127.0.0.1\"): cannot adopt the socket systemd passed " +
                "(fd 3 \"web\" 127.0.0.1:$port): this JVM needs --add-opens=java.base/sun.nio.ch=ALL-UNNAMED on its command line",
        )
    }

    test("sd_notify: READY=1 once every worker serves, RELOADING=1 and READY=1 around SIGHUP, STOPPING=1 on SIGTERM, watchdog pings") {
        val dir = Files.createTempDirectory("prefork-notify")
        val path = dir.resolve("notify.sock")
        val listener = ProcessBuilder(
            "python3", "-c",
            """
            import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.bind(sys.argv[1])
            print("listening", flush=True)
            while True:
                print(s.recv(65536).decode().replace("\n", "|"), flush=True)
            """.trimIndent(),
            path.toString(),
        ).redirectError(ProcessBuilder.Redirect.INHERIT).start()
        val datagrams = LinkedBlockingQueue<String>()
        thread(isDaemon = true) { listener.inputStream.bufferedReader().forEachLine { datagrams.put(it) } }
        fun next(regex: Regex): String {
            val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60)
            while (true) {
                val line = datagrams.poll(deadline - System.nanoTime(), TimeUnit.NANOSECONDS) ?: throw AssertionError("no datagram matching $regex")
                if (regex.containsMatchIn(line)) return line
            }
        }
        try {
            next(Regex("^listening$"))
            val port = freePort()
            FixtureJvm(FIXTURE, listOf("systemd", port.toString(), "2"), environment = mapOf("NOTIFY_SOCKET" to path.toString(), "WATCHDOG_USEC" to "400000")).use { f ->
                next(Regex("^STATUS=starting 2 workers$"))
                next(Regex("^READY=1\\|STATUS=2 of 2 workers serving$"))
                get(port, "/id") shouldContain Regex("^[01] ")
                repeat(3) { next(Regex("^WATCHDOG=1$")) }
                f.signal(1)
                next(Regex("^RELOADING=1\\|MONOTONIC_USEC=\\d+\\|STATUS=rolling restart of 2 workers$"))
                next(Regex("^READY=1\\|STATUS=2 of 2 workers serving$"))
                f.signal(15)
                next(Regex("^STOPPING=1\\|STATUS=stopping 2 workers$"))
                f.exitCode(60) shouldBe 0
                f.stdout() shouldContain "NOTIFY_SOCKET=null WATCHDOG_USEC=null"
                f.stderr() shouldNotContain "cannot notify systemd"
            }
        } finally {
            listener.destroyForcibly().waitFor()
            dir.toFile().deleteRecursively()
        }
    }

    test("the status file shows starting, serving and a restart, for a probe to read; it is gone after a graceful stop") {
        val dir = Files.createTempDirectory("prefork-status")
        val file = dir.resolve("status.json")
        try {
            val port = freePort()
            FixtureJvm(FIXTURE, listOf("systemd", port.toString(), "2", file.toString())).use { f ->
                val supervisor = f.awaitLine(Regex("supervisor pid (\\d+)")).groupValues[1]
                fun state() = Files.readString(file).trim()
                eventually(60.seconds) {
                    state() shouldContain Regex("^\\{\"pid\":$supervisor,\"state\":\"serving\",\"workers\":2,\"serving\":2,\"restarting\":0,\"spares\":0,\"updated\":\"[0-9T:Z-]+\"}$")
                }
                val worker = f.awaitLine(Regex("worker 0 pid (\\d+)")).groupValues[1].toLong()
                val before = Files.getLastModifiedTime(file)
                dev.prefork.testing.kill(worker, 9)
                f.awaitLine(Regex("worker 0 pid (\\d+)"))
                // Rewritten at the exit and at the replacement's ready: a newer file that says serving 2 again.
                eventually(30.seconds) {
                    state() shouldContain "\"serving\":2,"
                    (Files.getLastModifiedTime(file) > before) shouldBe true
                }
                f.stderr() shouldContain "child 0 (pid $worker) killed by signal 9, restarting"
                f.signal(15)
                f.exitCode(60) shouldBe 0
                Files.exists(file) shouldBe false
            }
        } finally {
            dir.toFile().deleteRecursively()
        }
    }
})
