package dev.prefork.netty

import io.netty.channel.Channel
import io.netty.channel.ChannelHandlerContext
import io.netty.channel.ChannelInboundHandlerAdapter
import java.io.IOException
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.RejectedExecutionException
import java.util.concurrent.ScheduledFuture
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean

/**
 * Leaves new connections on the shared accept queue while this worker is busy, for a worker
 * that is not. Every worker's event loop is woken for each connection on the shared socket, and
 * whichever runs first takes it (and every other connection queued then): a worker whose CPUs
 * are saturated takes as many as an idle one, and on a CPU-bound load each worker's CPUs sit
 * idle whenever the dice left it without a request (Ktor with 2 workers on 2 cores served 0.8x
 * the requests of one JVM). With the pacer the shared queue works as one queue for all workers,
 * as the accept loop of gunicorn's sync workers does.
 *
 * The worker is busy when both hold:
 * - its [WorkerLoad] (requests in flight, plus connections not yet asked anything) is at least
 *   its processors: each one has a request to work on;
 * - its CPU use over the last [WINDOW_NANOS] or more is at least [BUSY_SHARE] of its processors:
 *   the requests keep them busy, rather than wait for a database or another service (a worker
 *   whose requests wait takes new connections as before).
 *
 * While its load is at least its processors, the pacer looks at its CPUs every [WATCH_MILLIS],
 * and holds back as soon as they are busy. It accepts again when its load drops below its
 * processors (the connection that answered tells it at once), when its CPUs are no longer busy
 * (checked every [RECHECK_MILLIS] while it holds back), or after [maxHoldNanos] in a row: a
 * worker whose requests last longer than that then accepts as it would without the pacer, until
 * its load drops below its processors once. The state is kept on the server channel's event loop.
 */
internal class AcceptPacer private constructor(private val maxHoldNanos: Long) : ChannelInboundHandlerAdapter() {
    private lateinit var server: Channel
    private val nudged = AtomicBoolean()
    private val cpu = CpuUse()
    private var heldSince = 0L
    private var overdue = false
    private var recheck: ScheduledFuture<*>? = null

    override fun handlerAdded(ctx: ChannelHandlerContext) {
        server = ctx.channel()
        AcceptGate.of(server).acceptOnePerRead()
        WorkerLoad.watch(this)
    }

    override fun handlerRemoved(ctx: ChannelHandlerContext) {
        WorkerLoad.unwatch(this)
        recheck?.cancel(false)
    }

    override fun channelRead(ctx: ChannelHandlerContext, msg: Any) {
        if (msg is Channel) {
            ConnectionLoad.attach(msg)
            update()
        }
        ctx.fireChannelRead(msg)
    }

    /** The load crossed the worker's processors; from any thread. */
    fun nudge() {
        if (!nudged.compareAndSet(false, true)) return
        try {
            server.eventLoop().execute {
                nudged.set(false)
                update()
            }
        } catch (e: RejectedExecutionException) {
            // the event loop is shutting down: nothing to accept any more
        }
    }

    /** Holds back, or lets go; while the worker is loaded, looks again every [RECHECK_MILLIS] (held) or [WATCH_MILLIS]. */
    private fun update() {
        val gate = AcceptGate.of(server)
        if (!WorkerLoad.isLoaded()) {
            overdue = false
            gate.release(AcceptGate.BUSY) // a recheck still scheduled finds nothing to do
            return
        }
        if (overdue) return
        val now = System.nanoTime()
        when {
            !cpuBusy() -> gate.release(AcceptGate.BUSY)
            !gate.isHeld(AcceptGate.BUSY) -> {
                gate.hold(AcceptGate.BUSY)
                heldSince = now
            }
            now - heldSince >= maxHoldNanos -> {
                overdue = true
                gate.release(AcceptGate.BUSY)
                return
            }
        }
        if (recheck == null && server.isOpen) {
            val delay = if (gate.isHeld(AcceptGate.BUSY)) RECHECK_MILLIS else WATCH_MILLIS
            recheck = server.eventLoop().schedule({
                recheck = null
                update()
            }, delay, TimeUnit.MILLISECONDS)
        }
    }

    private fun cpuBusy(): Boolean = cpu.cores() >= BUSY_SHARE * WorkerLoad.busyAt

    /**
     * This JVM's CPU use, in cores, over the last window of at least [WINDOW_NANOS] that ended
     * when it was last asked. Read from `/proc/self/stat`, whose times count in clock ticks
     * (10 ms), hence the window: one read of a small file when the server channel is made, and
     * no `jdk.management` module needed (the JDK's `getProcessCpuTime` has the same ticks, and
     * its MXBean takes some 30 ms of a worker's start-up to set up). Where the file cannot be
     * read, the CPUs count as busy.
     */
    private class CpuUse {
        private var atNanos = System.nanoTime()
        private var atTicks = ticks()
        private var cores = 0.0

        fun cores(): Double {
            val now = System.nanoTime()
            if (now - atNanos >= WINDOW_NANOS) {
                val ticks = ticks()
                cores = if (ticks < 0 || atTicks < 0) Double.MAX_VALUE else (ticks - atTicks) * NANOS_PER_TICK / (now - atNanos)
                atNanos = now
                atTicks = ticks
            }
            return cores
        }

        /** User and system time of this process (`utime`, `stime`), or -1. */
        private fun ticks(): Long = try {
            val stat = String(Files.readAllBytes(SELF_STAT), Charsets.US_ASCII)
            // After the command's name: state is field 3, utime and stime are fields 14 and 15.
            val fields = stat.substring(stat.lastIndexOf(')') + 2).split(' ')
            fields[14 - 3].toLong() + fields[15 - 3].toLong()
        } catch (e: IOException) {
            -1
        } catch (e: RuntimeException) {
            -1
        }
    }

    companion object {
        private val SELF_STAT: Path = Path.of("/proc/self/stat")
        private const val NANOS_PER_TICK = 10_000_000.0 // USER_HZ, 100 on every Linux ABI


        const val BUSY_SHARE = 0.5
        const val RECHECK_MILLIS = 10L
        const val WATCH_MILLIS = 50L
        val WINDOW_NANOS = TimeUnit.MILLISECONDS.toNanos(100)

        /**
         * A pacer as the system properties ask, or null: `-Dprefork.acceptPacer=false` turns
         * pacing off; `-Dprefork.acceptPacer.maxHoldMillis=M` (default 100) is the longest a
         * busy worker leaves connections to the others. A value that is not one is refused
         * here, when the server channel is made, naming the property.
         */
        fun fromProperties(): AcceptPacer? {
            if (!System.getProperty("prefork.acceptPacer", "true").toBoolean()) return null
            val maxHoldMillis = maxHoldMillis(System.getProperty("prefork.acceptPacer.maxHoldMillis", "100"))
            return AcceptPacer(TimeUnit.MILLISECONDS.toNanos(maxHoldMillis))
        }

        fun maxHoldMillis(value: String): Long = requireNotNull(value.toLongOrNull()?.takeIf { it >= 0 }) {
            "prefork.acceptPacer.maxHoldMillis is not a number of milliseconds >= 0: '$value'"
        }
    }
}
