package dev.prefork.io

import dev.prefork.posix.Fds
import dev.prefork.posix.Linux
import dev.prefork.reaper.Background
import dev.prefork.reaper.Reactor
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.ReceiveChannel
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext

/**
 * Pumps the parent's read end of a pipe into a [Channel] of byte chunks, without a thread of
 * its own: it waits for readiness on the [Reactor] and makes a short read right there, on the
 * reactor thread (a child that writes a line, or only closes its end, costs no other thread's
 * wake-up); a flowing stream is read on [Background]'s IO dispatcher.
 *
 * Each chunk is read straight into the array the channel hands on, sized beforehand to what
 * the pipe holds (FIONREAD): the kernel's copy is the only one. The fd is non-blocking, so a
 * read never blocks. While a stream is in full flow the pump polls the pipe itself for up to a
 * millisecond before parking on the reactor: two thread hand-offs per chunk would cost more
 * than the copy.
 *
 * A stream that fills the pipe (64 KiB) proves to be bulk: the pipe is then grown to 1 MiB
 * (if the kernel's per-user pipe limits allow), and chunks to 256 KiB. Pipes are not grown up
 * front, because a thousand children's 1 MiB pipes would exhaust those limits for everyone.
 *
 * The channel holds a few chunks: a consumer that stops reading stops the pump, the pipe
 * fills and the child blocks, as with any pipe. Cancelling the channel closes the pipe.
 *
 * [handOver] stops the pump for a reader that reads the fd itself (a Java `InputStream`,
 * which then reads into the caller's own array): the pump closes the channel after its last
 * chunk, and the fd is then that reader's ([handedOver]).
 *
 * A [terminal] source reads a pseudo-terminal's master instead of a pipe: its end is the EIO
 * the master reads once no process holds the terminal open any more (after the output the
 * terminal still held), and it is never grown.
 */
internal class PipeSource(
    private val fd: Int,
    private val reactor: Reactor,
    private val name: String,
    private val terminal: Boolean = false,
) {
    private val channel = Channel<ByteArray>(CHANNEL_CHUNKS)
    private var pump: Job? = null

    @Volatile private var handingOver = false

    /** Set as the pump closes the channel itself: nothing is left to cancel then. */
    @Volatile private var pumpEnding = false

    /** Guards who closes [fd] after a hand-over: the pump, or the reader it went to. */
    private val ownership = Any()
    private var released = false

    /** Whether the pump stopped for [handOver] with the stream still open: the fd is the direct reader's. */
    @Volatile var handedOver: Boolean = false
        private set

    init {
        // The parent's end only: the child's end is a file description of its own, and stays blocking.
        Fds.setNonBlocking(fd)
    }

    val output: ReceiveChannel<ByteArray> get() = channel

    /** The read end, for the reader that took it over ([handedOver]). */
    val readFd: Int get() = fd

    /** Starts pumping; runs on the caller's thread until the first wait for data. */
    fun start() {
        val pump = Background.launch(Dispatchers.Unconfined, start = CoroutineStart.UNDISPATCHED) { pump() }
        this.pump = pump
        // A consumer that cancels the channel must not wait for the pipe's next data to free it.
        // The pump's own close needs no cancel, which would cost an exception and a cancelled job every stream.
        channel.invokeOnClose { if (!pumpEnding) pump.cancel() }
    }

    /** Asks the pump to stop and leave the fd open; the channel closes after the chunks already read. */
    fun handOver() {
        handingOver = true
        // Only a wait for readiness is cancellable: a chunk being sent is always delivered.
        pump?.cancel()
    }

    /**
     * The direct reader is done (closed): the fd is closed, now or as the pump stops, or as the
     * last [readAfterHandOver] returns (one that waits for data is woken for it).
     */
    fun release() {
        val waiting = synchronized(ownership) {
            if (released) return
            released = true
            if (directReads == 0) closeHandedOver()
            directWait
        }
        waiting?.wake()
    }

    /** A non-blocking read of [fd], as [Fds.read]; a terminal's EIO (nobody holds it open any more) is its end. */
    fun read(bytes: ByteArray, offset: Int, length: Int): Int = Fds.read(fd, bytes, offset, length, eioEnds = terminal) { name }

    /** Calls inside [readAfterHandOver], guarded by [ownership]: the fd is closed only once none is. */
    private var directReads = 0

    /** The direct reader's wait for data on the reactor, made at its first empty read; guarded by [ownership]. */
    private var directWait: Reactor.Readiness? = null

    /**
     * A read for the coroutine that took the fd over ([handedOver]): up to [length] bytes
     * straight into [bytes], suspending on the reactor while the pipe is empty. Returns the
     * count, -1 at end of stream, or [RELEASED] once [release] ran (before or during the wait).
     */
    suspend fun readAfterHandOver(bytes: ByteArray, offset: Int, length: Int): Int {
        synchronized(ownership) {
            if (released) return RELEASED
            directReads++
        }
        try {
            while (true) {
                val count = read(bytes, offset, length)
                if (count != 0) return count
                val wait = synchronized(ownership) {
                    if (released) return RELEASED
                    directWait ?: reactor.readiness(fd).also { directWait = it }
                }
                wait.await(Linux.EPOLLIN)
            }
        } finally {
            synchronized(ownership) {
                directReads--
                if (released && directReads == 0) closeHandedOver()
            }
        }
    }

    /** Under [ownership], once released and nobody reads: the direct reader's wait and the fd go (the pump closes an fd it still holds). */
    private fun closeHandedOver() {
        directWait?.close()
        directWait = null
        if (handedOver) Fds.closeQuietly(fd)
    }

    /** Releases everything when the child could not be started. */
    fun abandon() {
        Fds.closeQuietly(fd)
        channel.close()
    }

    private suspend fun pump() {
        val readiness = reactor.readiness(fd)
        var failure: Throwable? = null
        var ended = false
        try {
            while (!handingOver) {
                // A pipe hangs up once every write end is closed; a terminal's end is its EIO instead.
                val events = readiness.await(Linux.EPOLLIN)
                val hungUp = !terminal && (events and Linux.EPOLLHUP) != 0
                // Resumed on the reactor thread (the pump is unconfined). A short read there costs less
                // than waking a thread for it; a flowing stream, which polls and tops up, moves to the IO pool.
                var outcome = drain(onReactor = true, hungUp)
                if (outcome == FLOWS) outcome = withContext(Dispatchers.IO) { drain(onReactor = false, hungUp) }
                if (outcome == ENDED) {
                    ended = true
                    return
                }
            }
        } catch (t: Throwable) {
            failure = t
            throw t
        } finally {
            readiness.close()
            synchronized(ownership) {
                if (handingOver && !ended && !released && (failure == null || failure is CancellationException)) {
                    handedOver = true
                } else {
                    Fds.closeQuietly(fd)
                }
            }
            pumpEnding = true
            channel.close(failure?.takeUnless { it is CancellationException })
        }
    }

    /** The chunk size of a flowing stream: a pipe's, or [BULK_CHUNK] once the stream proved bulk. */
    private var chunk = DEFAULT_PIPE

    /**
     * Reads what the pipe holds into the channel, until it is empty ([WAIT]), the stream ended
     * ([ENDED]), or, [onReactor], a flowing stream is found ([FLOWS]: not read there).
     *
     * A pipe that [hungUp] gets no more data: once it is empty, that is its end, known without
     * the read (and the array for it) that would only return end-of-file.
     */
    private suspend fun drain(onReactor: Boolean, hungUp: Boolean): Int {
        var flowing: Boolean
        var reads = 0
        do {
            val waiting = Fds.available(fd)
            if (hungUp && waiting == 0) return ENDED
            // The reactor serves every child: a stream that keeps it reading is a flowing one.
            if (onReactor && (waiting >= FLOWING || ++reads > REACTOR_READS)) return FLOWS
            // A flowing stream gets whole chunks, topped up as data arrives: fewer hand-offs to the consumer.
            val bytes = ByteArray(if (waiting >= FLOWING) chunk else maxOf(waiting, SMALL))
            var count = read(bytes, 0, bytes.size)
            if (count < 0) return ENDED
            if (count == 0) return WAIT // nothing there after all (EAGAIN)
            if (waiting >= FLOWING) count = fillWhileFlowing(bytes, count)
            // Only a chunk cut short (a pause in the flow, the end, or the end-of-stream probe) is copied.
            val delivered = if (count == bytes.size) bytes else bytes.copyOf(count)
            withContext(NonCancellable) { channel.send(delivered) }
            if (endSeen) return ENDED
            if (waiting >= DEFAULT_PIPE && chunk < BULK_CHUNK && !terminal && Fds.growPipe(fd, BULK_PIPE)) chunk = BULK_CHUNK
            flowing = count >= FLOWING
        } while (!handingOver && (hungUp || Fds.available(fd) > 0 || (flowing && Fds.pollReadable(fd, FLOW_WAIT_MILLIS))))
        return WAIT
    }

    /** Set when [fillWhileFlowing] read the end of the stream. */
    private var endSeen = false

    /**
     * Tops up [bytes] from [count] while data keeps arriving (within a millisecond each time,
     * two at most overall); returns the new count.
     */
    private fun fillWhileFlowing(bytes: ByteArray, count: Int): Int {
        var filled = count
        val deadline = System.nanoTime() + FILL_NANOS
        while (filled < bytes.size && System.nanoTime() < deadline) {
            if (Fds.available(fd) == 0 && !Fds.pollReadable(fd, FLOW_WAIT_MILLIS)) break
            val more = read(bytes, filled, bytes.size - filled)
            if (more < 0) {
                endSeen = true
                break
            }
            filled += more
        }
        return filled
    }

    companion object {
        /** [readAfterHandOver]'s answer once the fd was released. */
        const val RELEASED = -2

        /** What [drain] stopped at. */
        private const val WAIT = 0
        private const val ENDED = 1
        private const val FLOWS = 2

        private const val CHANNEL_CHUNKS = 8

        /** Short reads the reactor thread makes for one wake-up before it hands the stream to the IO pool. */
        private const val REACTOR_READS = 4
        private const val FILL_NANOS = 2_000_000L

        /** A read this large means the stream is flowing: wait for the next data here, briefly, before parking on the reactor. */
        private const val FLOWING = 16 * 1024
        private const val FLOW_WAIT_MILLIS = 1

        /** The array for a read when FIONREAD says nothing waits: end of stream, or data that arrived since. */
        private const val SMALL = 4096
        private const val DEFAULT_PIPE = 64 * 1024
        private const val BULK_PIPE = 1024 * 1024

        /**
         * Chunks stay under half of G1's smallest region (1 MiB): larger arrays are "humongous",
         * allocated and freed on a slow path that halves throughput.
         */
        private const val BULK_CHUNK = 256 * 1024
    }
}
