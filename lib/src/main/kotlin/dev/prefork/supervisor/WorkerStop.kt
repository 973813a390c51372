package dev.prefork.supervisor

import dev.prefork.log.info
import dev.prefork.log.logger
import dev.prefork.log.warn
import java.net.InetSocketAddress
import java.nio.channels.ServerSocketChannel
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit
import sun.misc.Signal
import sun.misc.SignalHandler

private val logger = logger("dev.prefork.supervisor.WorkerStop")

/**
 * A worker's SIGTERM, which the supervisor sends on a graceful stop and to the old worker of a
 * rolling restart. The worker first stops taking connections from the shared accept queue:
 * prefork closes this process's handles on the sockets it handed over (the socket, its queue
 * and the other workers' handles stay open), which also wakes a thread blocked in `accept`,
 * then runs the stop-accepting actions its server registered (quiet the acceptor, turn
 * keep-alive off, let open connections finish). Only then does the JVM shut down as SIGTERM
 * always makes it, running the server's own shutdown hooks, while a hook of prefork's keeps
 * the JVM up until the connections this worker accepted are closed, at most the drain
 * timeout: a server that does nothing on SIGTERM still finishes the requests it holds.
 */
internal object WorkerStop {
    private val actions = CopyOnWriteArrayList<Runnable>()
    private val afterDrain = CopyOnWriteArrayList<Runnable>()
    private val channels = CopyOnWriteArrayList<ServerSocketChannel>()

    /** Local ports of the handed-over sockets: an open connection on one of them was accepted by this worker. */
    private val ports: MutableSet<Int> = ConcurrentHashMap.newKeySet()
    /** Set once, on the first SIGTERM (a plain volatile: an AtomicBoolean would set up VarHandles on the start-up path). */
    @Volatile private var stopping = false

    /** True from the moment this worker got SIGTERM. */
    val isStopping: Boolean get() = stopping

    /** When the drain ends (System.nanoTime); 0 while no SIGTERM arrived: an exit for any other reason does not wait. */
    @Volatile private var drainDeadline = 0L

    /** The handler SIGTERM had before ours: the JVM's, which exits through the shutdown hooks. */
    @Volatile private var previousHandler: SignalHandler? = null

    /** Whether the SIGTERM's stop-accepting actions ran: one added since runs at once, on a thread of its own. Guarded by `this`. */
    private var actionsRan = false

    fun onStopAccepting(action: Runnable) {
        synchronized(this) {
            if (!actionsRan) {
                actions += action
                return
            }
        }
        // Added by a server while or after the worker stopped (its first connection came just then): it still stops.
        Thread({ run(action) }, "prefork-stop-accepting").start()
    }

    fun onDrained(action: Runnable) {
        afterDrain += action
    }

    /** A listening socket this worker got from its supervisor (shared or SO_REUSEPORT): closed on SIGTERM. */
    fun handedOver(channel: ServerSocketChannel) {
        channels += channel
        (channel.localAddress as? InetSocketAddress)?.let { ports += it.port }
    }

    /** Called once in a worker, when `forkProcesses` returns: SIGTERM stops accepting first from now on. */
    fun install(drainMillis: Long, inheritedChannel: Boolean) {
        val term = Signal("TERM")
        val previous = try {
            Signal.handle(term) { signal -> onTerm(signal, drainMillis, inheritedChannel) }
        } catch (e: IllegalArgumentException) {
            logger.warn { "${WorkerRuntime.describe()} cannot handle SIGTERM (${e.message}): it will not stop accepting before it exits" }
            return
        }
        previousHandler = previous
        Runtime.getRuntime().addShutdownHook(Thread({ awaitDrained() }, "prefork-drain"))
    }

    /** Runs on a thread of its own, as the JVM runs every signal handler. */
    private fun onTerm(signal: Signal, drainMillis: Long, inheritedChannel: Boolean) {
        synchronized(this) {
            if (stopping) return // the JVM is already on its way out
            stopping = true
        }
        drainDeadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(drainMillis)
        stopAccepting(inheritedChannel)
        val previous = previousHandler
        if (previous == null || previous == SignalHandler.SIG_DFL || previous == SignalHandler.SIG_IGN) {
            System.exit(EXIT_ON_SIGTERM)
        } else {
            previous.handle(signal) // the JVM's own: exit with 143 through the shutdown hooks
        }
    }

    private fun stopAccepting(inheritedChannel: Boolean) {
        val who = WorkerRuntime.describe()
        // This process's handles only: the socket, its queue and the other workers' handles stay open.
        channels.forEach { runCatching { it.close() } }
        if (inheritedChannel) {
            (System.inheritedChannel() as? ServerSocketChannel)?.let { inherited ->
                (inherited.localAddress as? InetSocketAddress)?.let { ports += it.port }
                InheritedStdio.closeKeepingOutput(inherited)
            }
        }
        logger.info { "$who: SIGTERM, stopped accepting" }
        // Index by index, so that an action added by one that runs (a server's event loop, meanwhile) runs too, in turn.
        var next = 0
        while (true) {
            val action = synchronized(this) {
                if (next < actions.size) actions[next++] else null.also { actionsRan = true }
            } ?: break
            run(action)
        }
    }

    private fun run(action: Runnable) {
        try {
            action.run()
        } catch (e: Exception) {
            logger.warn(e) { "${WorkerRuntime.describe()}: a stop-accepting action failed" }
        }
    }

    /** prefork's shutdown hook in a worker: after a SIGTERM, wait for the drain; in any shutdown, then run the after-drain actions. */
    private fun awaitDrained() {
        val deadline = drainDeadline
        if (deadline != 0L) {
            var open = ProcNet.acceptedConnections(ports)
            while (open > 0 && System.nanoTime() < deadline) {
                Thread.sleep(POLL_MILLIS)
                open = ProcNet.acceptedConnections(ports)
            }
            if (open > 0) logger.warn { "${WorkerRuntime.describe()}: $open accepted connections still open after the drain timeout, exiting" }
        }
        for (action in afterDrain) {
            try {
                action.run()
            } catch (e: Exception) {
                logger.warn(e) { "${WorkerRuntime.describe()}: an after-drain action failed" }
            }
        }
    }

    /** What the JVM itself exits with on SIGTERM: 128 + 15. */
    private const val EXIT_ON_SIGTERM = 143
    private const val POLL_MILLIS = 20L
}
