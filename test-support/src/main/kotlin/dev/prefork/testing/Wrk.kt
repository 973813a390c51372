package dev.prefork.testing

import java.io.File
import java.util.concurrent.TimeUnit
import kotlin.concurrent.thread

/**
 * wrk (Debian's `wrk` package), the load generator, sending `GET [path]` to 127.0.0.1:[port]
 * from [connections] connections on [threads] threads until [stop]. Each request takes a fresh
 * connection (`Connection: close`) unless [keepAlive]: every one then goes through the shared
 * accept queue. [close] kills it if [stop] was never called.
 */
class Wrk(
    port: Int,
    path: String = "/",
    connections: Int = 8,
    threads: Int = 2,
    keepAlive: Boolean = false,
    timeoutSeconds: Int = 5,
) : AutoCloseable {
    /** What wrk printed: requests completed and every kind of failure it counts. */
    class Result(val output: String) {
        val requests: Long = number(Regex("(\\d+) requests in"))
        val connectErrors: Long = socketErrors(1)
        val readErrors: Long = socketErrors(2)
        val writeErrors: Long = socketErrors(3)
        val timeouts: Long = socketErrors(4)
        val non2xx: Long = number(Regex("Non-2xx or 3xx responses: (\\d+)"), absent = 0)
        val failures: Long get() = connectErrors + readErrors + writeErrors + timeouts + non2xx

        private fun socketErrors(group: Int): Long =
            SOCKET_ERRORS.find(output)?.groupValues?.get(group)?.toLong() ?: 0

        private fun number(regex: Regex, absent: Long? = null): Long =
            regex.find(output)?.groupValues?.get(1)?.toLong() ?: absent ?: throw AssertionError("wrk printed no $regex:\n$output")

        override fun toString(): String =
            "$requests requests, failures: connect $connectErrors, read $readErrors, write $writeErrors, " +
                "timeout $timeouts, non-2xx $non2xx"
    }

    private val process: Process
    private val output = StringBuffer()
    private val reader: Thread

    init {
        val wrk = listOf("/usr/bin/wrk", "/usr/local/bin/wrk").firstOrNull { File(it).canExecute() }
            ?: throw AssertionError("wrk is not installed (Debian: apt-get install wrk; .ci/run installs it)")
        val command = mutableListOf(wrk, "-t$threads", "-c$connections", "-d${MAX_SECONDS}s", "--timeout", "${timeoutSeconds}s")
        if (!keepAlive) command += listOf("-H", "Connection: close")
        command += "http://127.0.0.1:$port$path"
        process = ProcessBuilder(command).redirectErrorStream(true).start()
        // wrk would outlive a test JVM that dies without closing it, for MAX_SECONDS at most.
        Runtime.getRuntime().addShutdownHook(Thread { process.destroyForcibly() })
        reader = thread(isDaemon = true, name = "wrk-output") {
            process.inputStream.bufferedReader().forEachLine { output.append(it).append('\n') }
        }
    }

    /** Stops the load (SIGINT, on which wrk prints its figures) and returns what it counted. */
    fun stop(): Result {
        ProcessBuilder("kill", "-INT", process.pid().toString()).start().waitFor()
        if (!process.waitFor(30, TimeUnit.SECONDS)) throw AssertionError("wrk did not stop on SIGINT:\n$output")
        reader.join(5_000)
        return Result(output.toString())
    }

    override fun close() {
        if (process.isAlive) {
            process.destroyForcibly()
            process.waitFor(10, TimeUnit.SECONDS)
        }
    }

    private companion object {
        const val MAX_SECONDS = 300
        val SOCKET_ERRORS = Regex("Socket errors: connect (\\d+), read (\\d+), write (\\d+), timeout (\\d+)")
    }
}
