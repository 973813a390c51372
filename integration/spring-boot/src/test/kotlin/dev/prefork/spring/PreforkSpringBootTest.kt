package dev.prefork.spring

import dev.prefork.testing.FixtureJvm
import dev.prefork.testing.ProcFs
import dev.prefork.testing.get
import dev.prefork.testing.pidIn
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.ints.shouldBeInRange
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldNotContain
import java.io.IOException

private const val FIXTURE = "dev.prefork.spring.fixtures.SpringFixtureKt"

/**
 * prefork-spring-boot on the Spring Boot it is compiled against, 3.5 (the floor: Kotlin 1.9.25,
 * kotlinx-coroutines 1.8.1, Tomcat 10.1, Jetty 12.0, Reactor Netty 1.2 on Netty 4.1), each
 * server in a fresh JVM under a real supervisor. Spring Boot 4.0 and 4.1 run the samples'
 * contract (samples/tests).
 */
class PreforkSpringBootTest : FunSpec({
    for (server in listOf("tomcat", "jetty", "netty")) {
        test("Spring Boot 3.5 on $server: both workers serve the shared socket, bind no port of their own, and SIGTERM stops all with status 0") {
            FixtureJvm(FIXTURE, listOf(server)).use { f ->
                val port = f.awaitLine(Regex("port (\\d+)"), 60).groupValues[1].toInt()
                val pids = mutableSetOf<Long>()
                val deadline = System.nanoTime() + 120_000_000_000
                while (pids.size < 2) {
                    check(System.nanoTime() < deadline && f.process.isAlive) { "workers $pids answered; stdout:\n${f.stdout()}\nstderr:\n${f.stderr()}" }
                    try {
                        pidIn(get(port, timeoutMillis = 5_000))?.let { pids += it }
                    } catch (e: IOException) {
                        Thread.sleep(100)
                    }
                }
                val workers = f.process.descendants().map { it.pid() }.toList()
                workers.toSet() shouldBe pids
                // Each worker's only listening socket is the shared one (fd 0); the supervisor holds it too.
                for (pid in pids) withClue("worker $pid") { ProcFs.listeningPorts(pid) shouldBe setOf(port) }
                f.signal(15)
                withClue("stdout:\n${f.stdout()}\nstderr:\n${f.stderr()}") { f.exitCode(60) shouldBe 0 }
                f.stdout() + f.stderr() shouldNotContain "already in use"
            }
        }
    }

    test("Spring Boot 3.5 on Undertow, which prefork cannot hook: each worker fails at start saying so, and the supervisor gives up after 3 rounds") {
        FixtureJvm(FIXTURE, listOf("undertow")).use { f ->
            withClue("stdout:\n${f.stdout()}\nstderr:\n${f.stderr()}") { f.exitCode(120) shouldNotBe 0 }
            val log = f.stdout() + f.stderr()
            log shouldContain "prefork worker 0 cannot serve the shared socket with " +
                "org.springframework.boot.web.embedded.undertow.UndertowServletWebServerFactory (Spring Boot 3.5.7)"
            log shouldContain "Action:\n\nServe the application with Tomcat (spring-boot-starter-web, or -webmvc on Spring Boot 4), Jetty"
            log shouldContain "every worker failed its last 3 starts in a row"
            // 3 starts of each worker, and perhaps a fourth of the one that got to three first, stopped when the supervisor gives up
            Regex("APPLICATION FAILED TO START").findAll(log).count() shouldBeInRange 6..7
            log shouldNotContain "already in use"
        }
    }

    test("Spring Boot 3.5 with Actuator's management server on a port of its own: each worker fails at start saying so") {
        FixtureJvm(FIXTURE, listOf("tomcat-management")).use { f ->
            withClue("stdout:\n${f.stdout()}\nstderr:\n${f.stderr()}") { f.exitCode(120) shouldNotBe 0 }
            val log = f.stdout() + f.stderr()
            log shouldContain "Spring Boot's management server has a port of its own (management.server.port=0), which every worker would bind"
            log shouldContain "every worker failed its last 3 starts in a row"
            log shouldNotContain "already in use"
        }
    }
})
