package dev.prefork.netty

import io.netty.channel.Channel
import io.netty.channel.ChannelFutureListener
import io.netty.util.AttributeKey
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicInteger

/**
 * What this worker has on its hands, across its connections: the HTTP requests it is serving,
 * and the connections it accepted that have not sent their first request yet. [AcceptPacer]
 * weighs it against [busyAt], the processors the worker's JVM was given (its share, with
 * `ForkOptions.cpuShare`). Requests are counted where an [HttpDrainHandler] sees them; without
 * one, nothing is held back.
 */
internal object WorkerLoad {
    val busyAt: Int = Runtime.getRuntime().availableProcessors()

    private val units = AtomicInteger()
    private val pacers = CopyOnWriteArrayList<AcceptPacer>()

    @Volatile
    private var counting = false

    fun isLoaded(): Boolean = counting && units.get() >= busyAt

    fun watch(pacer: AcceptPacer) {
        pacers += pacer
    }

    fun unwatch(pacer: AcceptPacer) {
        pacers -= pacer
    }

    /** A request handler of this worker counts requests: from now on the load means something. */
    fun requestsCounted() {
        if (counting) return
        counting = true
        // The connections counted before it may have loaded the worker already.
        if (units.get() >= busyAt) pacers.forEach { it.nudge() }
    }

    /** Adds [delta] units; the pacers hear of it when the load crosses [busyAt], either way. */
    fun change(delta: Int) {
        val now = units.addAndGet(delta)
        if ((now - delta >= busyAt) != (now >= busyAt)) pacers.forEach { it.nudge() }
    }
}

/**
 * One connection's share of [WorkerLoad]: one unit from its accept until its first request
 * (which takes that unit over), one more for each request read after that, one less for each
 * answer written, and the rest when it closes. Made on the server channel's event loop when the
 * connection is accepted, before it is registered; touched on its own event loop afterwards.
 */
internal class ConnectionLoad private constructor() {
    private var units = 1
    private var awaitingFirst = true

    fun requestRead() {
        if (awaitingFirst) {
            awaitingFirst = false
        } else {
            units++
            WorkerLoad.change(1)
        }
    }

    fun answered() {
        awaitingFirst = false
        if (units > 0) {
            units--
            WorkerLoad.change(-1)
        }
    }

    private fun closed() {
        if (units > 0) {
            WorkerLoad.change(-units)
            units = 0
        }
    }

    companion object {
        private val KEY = AttributeKey.valueOf<ConnectionLoad>("dev.prefork.netty.ConnectionLoad")

        /** Counts [connection], just accepted, until it closes. */
        fun attach(connection: Channel) {
            val load = ConnectionLoad()
            connection.attr(KEY).set(load)
            WorkerLoad.change(1)
            connection.closeFuture().addListener(ChannelFutureListener { load.closed() })
        }

        /** The load of [connection], or null when it came from a server channel prefork did not make. */
        fun of(connection: Channel): ConnectionLoad? = connection.attr(KEY).get()
    }
}
