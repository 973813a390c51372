package dev.prefork.io

import dev.prefork.posix.Fds
import dev.prefork.posix.Linux
import dev.prefork.reaper.Background
import dev.prefork.reaper.Reactor
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.ReceiveChannel
import kotlinx.coroutines.launch
import java.io.FileInputStream
import java.io.IOException
import java.nio.ByteBuffer

/**
 * Pumps the parent's read end of a pipe into a [Channel] of byte chunks, without a thread of
 * its own: it waits for readiness on the [Reactor], then reads on [Background]'s dispatcher.
 *
 * Reads go through a [FileInputStream]'s channel opened on `/proc/self/fd/N`: a second,
 * blocking open of the same pipe, which the JDK reads straight into a direct buffer, faster
 * than an FFI call can (SPEC section 6). The original [fd] only serves to ask epoll about
 * readiness, so a read never blocks: it runs only after the pipe reported data or hang-up,
 * and [FileInputStream.available] (FIONREAD) says whether to read on or wait again. While a
 * stream is in full flow the pump polls the pipe itself for up to a millisecond before
 * parking on the reactor: two thread hand-offs per chunk would cost more than the copy.
 *
 * A stream that fills the pipe (64 KiB) proves to be bulk: the pipe is then grown to 1 MiB
 * (if the kernel's per-user pipe limits allow), and reads to 256 KiB. Pipes are not grown up
 * front, because a thousand children's 1 MiB pipes would exhaust those limits for everyone.
 *
 * The channel holds a few chunks: a consumer that stops reading stops the pump, the pipe
 * fills and the child blocks, as with any pipe. Cancelling the channel closes the pipe.
 *
 * Construct it before the child is spawned (while this process still holds the write end,
 * or the blocking open would wait for a writer), then [start] it, or [abandon] it.
 */
internal class PipeSource(private val fd: Int, private val reactor: Reactor) {
    private val channel = Channel<ByteArray>(CHANNEL_CHUNKS)
    private val input = try {
        FileInputStream("/proc/self/fd/$fd")
    } catch (e: IOException) {
        throw IOException("cannot open /proc/self/fd/$fd for pipe reading: ${e.message}", e)
    }

    val output: ReceiveChannel<ByteArray> get() = channel

    /** Starts pumping; runs on the caller's thread until the first wait for data. */
    fun start() {
        val pump = Background.launch(start = CoroutineStart.UNDISPATCHED) { pump() }
        // A consumer that cancels the channel must not wait for the pipe's next data to free it.
        channel.invokeOnClose { pump.cancel() }
    }

    /** Releases everything when the child could not be started. */
    fun abandon() {
        input.close()
        Fds.closeQuietly(fd)
        channel.close()
    }

    private suspend fun pump() {
        val readiness = reactor.readiness(fd)
        val reads = input.channel
        var failure: Throwable? = null
        try {
            var chunk = DEFAULT_PIPE
            while (true) {
                readiness.await(Linux.EPOLLIN)
                do {
                    // This thread's buffer: nothing suspends between the read and the copy out of it.
                    val buffer = readBuffers.get().clear().limit(chunk)
                    val first = reads.read(buffer)
                    if (first < 0) return
                    val eof = first >= FLOWING && !fillWhileFlowing(reads, buffer)
                    buffer.flip()
                    channel.send(ByteArray(buffer.remaining()).also { buffer.get(it) })
                    if (eof) return
                    if (first == chunk && chunk < BULK_CHUNK && Fds.growPipe(fd, BULK_PIPE)) chunk = BULK_CHUNK
                } while (input.available() > 0 || (first >= FLOWING && Fds.pollReadable(fd, FLOW_WAIT_MILLIS)))
            }
        } catch (t: Throwable) {
            failure = t
            throw t
        } finally {
            readiness.close()
            input.close()
            Fds.closeQuietly(fd)
            channel.close(failure?.takeUnless { it is CancellationException })
        }
    }

    /**
     * Tops up [buffer] while data keeps arriving (within a millisecond each time, two at
     * most overall), so a fast stream travels in a few large chunks rather than many small
     * ones. Returns false at end of stream.
     */
    private fun fillWhileFlowing(reads: java.nio.channels.FileChannel, buffer: ByteBuffer): Boolean {
        val deadline = System.nanoTime() + FILL_NANOS
        while (buffer.hasRemaining() && System.nanoTime() < deadline) {
            if (input.available() == 0 && !Fds.pollReadable(fd, FLOW_WAIT_MILLIS)) return true
            if (reads.read(buffer) < 0) return false
        }
        return true
    }

    private companion object {
        const val CHANNEL_CHUNKS = 8

        /** A read this large means the stream is flowing: wait for the next data here, briefly, before parking on the reactor. */
        const val FLOWING = 16 * 1024
        const val FLOW_WAIT_MILLIS = 1
        const val FILL_NANOS = 2_000_000L
        const val DEFAULT_PIPE = 64 * 1024
        const val BULK_PIPE = 1024 * 1024

        /**
         * Chunks stay under half of G1's smallest region (1 MiB): larger arrays are "humongous",
         * allocated and freed on a slow path that halves throughput.
         */
        const val BULK_CHUNK = 256 * 1024

        /** One direct read buffer per IO thread, instead of one per pipe: spawning stays cheap. */
        val readBuffers: ThreadLocal<ByteBuffer> = ThreadLocal.withInitial { ByteBuffer.allocateDirect(BULK_CHUNK) }
    }
}
