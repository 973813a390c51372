package dev.prefork.testing

import java.io.IOException
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger

/**
 * [clients] threads in this JVM sending `GET [path]` to [port] back to back, a fresh
 * connection each, until closed; counts what was served and what failed, request by request.
 */
class Load(port: Int, clients: Int, path: String = "/") : AutoCloseable {
    val served = AtomicInteger()
    val failures = AtomicInteger()
    private val stop = AtomicBoolean()
    private val pool = Executors.newFixedThreadPool(clients)

    init {
        repeat(clients) {
            pool.execute {
                while (!stop.get()) {
                    try {
                        get(port, path)
                        served.incrementAndGet()
                    } catch (e: IOException) {
                        failures.incrementAndGet()
                    }
                }
            }
        }
    }

    override fun close() {
        stop.set(true)
        pool.shutdown()
        pool.awaitTermination(20, TimeUnit.SECONDS)
    }
}
