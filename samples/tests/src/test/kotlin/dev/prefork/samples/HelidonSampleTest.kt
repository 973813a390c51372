package dev.prefork.samples

import dev.prefork.testing.FixtureJvm
import dev.prefork.testing.SampleServerTests
import dev.prefork.testing.pidIn
import io.kotest.assertions.nondeterministic.eventually
import io.kotest.assertions.withClue
import io.kotest.core.annotation.Condition
import io.kotest.core.annotation.EnabledIf
import io.kotest.core.spec.Spec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import java.io.ByteArrayOutputStream
import java.io.IOException
import java.net.Socket
import kotlin.reflect.KClass
import kotlin.time.Duration.Companion.seconds

private val JAR = sampleJar("helidon", "prefork-helidon-sample.jar")

/**
 * Helidon 4 SE, on Helidon's application parent: its listener's own `ServerSocketChannel.open()`
 * gets the shared socket through prefork-helidon's SelectorProvider. Helidon 4 answers HTTP/1.0
 * with 505, so the workers are asked over HTTP/1.1. JDK 21 and newer only.
 */
@EnabledIf(Java21::class)
class HelidonSampleTest : SampleServerTests("Helidon 4 SE", JAR, http11 = true) {
    init {
        // Helidon stops its listener, and every idle connection with it, when accept fails: prefork-helidon's channel keeps it waiting.
        test("an idle keep-alive connection of a worker that got SIGTERM still has its next request answered, with Connection: close") {
            FixtureJvm(null, listOf("--port=0", "--workers=1", "--no-archive"), jar = JAR).use { f ->
                val port = f.awaitLine(Regex("http://127\\.0\\.0\\.1:(\\d+)"), 60).groupValues[1].toInt()
                val worker = f.awaitLine(Regex("\\[helidon worker 0] pid (\\d+) serving"), 60).groupValues[1].toLong()
                Socket("127.0.0.1", port).use { connection ->
                    connection.soTimeout = 10_000
                    val first = exchange(connection)
                    first.header("Connection") shouldBe "keep-alive"
                    pidIn(first.body) shouldBe worker
                    f.signal(1)
                    eventually(60.seconds) { f.stdout() + f.stderr() shouldContain "worker 0: SIGTERM, stopped accepting" }
                    Thread.sleep(300)
                    val second = withClue("the old worker's answer on its idle connection after SIGTERM; ${f.stdout()}") { exchange(connection) }
                    second.status shouldBe "HTTP/1.1 200 OK"
                    second.header("Connection") shouldBe "close"
                    pidIn(second.body) shouldBe worker
                }
                eventually(60.seconds) { f.stdout() + f.stderr() shouldContain "rolling restart done" }
                f.signal(15)
                f.exitCode(60) shouldBe 0
            }
        }
    }
}

/** An HTTP/1.1 answer: its status line, headers and body. */
private class Answer(val status: String, private val headers: Map<String, String>, val body: String) {
    fun header(name: String): String? = headers[name.lowercase()]
}

/** `GET /` on [connection], kept alive, and its answer, read to the end its Content-Length gives. */
private fun exchange(connection: Socket): Answer {
    connection.getOutputStream().write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".toByteArray())
    val input = connection.getInputStream()
    val read = ByteArrayOutputStream()
    while (!read.toString(Charsets.ISO_8859_1).contains("\r\n\r\n")) {
        val b = input.read()
        if (b < 0) throw IOException("the connection closed before an answer: \"$read\"")
        read.write(b)
    }
    val lines = read.toString(Charsets.ISO_8859_1).trimEnd().split("\r\n")
    val headers = lines.drop(1).associate { it.substringBefore(':').lowercase() to it.substringAfter(':').trim() }
    val body = input.readNBytes(headers.getValue("content-length").toInt()).decodeToString()
    return Answer(lines[0], headers, body)
}

/**
 * Helidon 4 needs Java 21: on an older JDK the root POM does not build samples/helidon, and its
 * contract is skipped, saying so.
 */
class Java21 : Condition {
    override fun evaluate(kclass: KClass<out Spec>): Boolean {
        val feature = Runtime.version().feature()
        if (feature < 21) System.err.println("${kclass.simpleName} skipped: Helidon 4 needs Java 21 or newer, this JVM is ${Runtime.version()}")
        return feature >= 21
    }
}
