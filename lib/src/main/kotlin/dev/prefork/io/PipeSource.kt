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
 * and [FileInputStream.available] (FIONREAD) says whether to read on or wait again.
 *
 * A stream that fills the pipe (64 KiB) proves to be bulk: the pipe is then grown to 1 MiB
 * (if the kernel's per-user pipe limits allow), and so are the reads. Pipes are not grown up
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
        Background.launch(start = CoroutineStart.UNDISPATCHED) { pump() }
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
            var buffer = ByteBuffer.allocateDirect(DEFAULT_PIPE)
            while (true) {
                readiness.await(Linux.EPOLLIN)
                do {
                    buffer.clear()
                    val count = reads.read(buffer)
                    if (count < 0) return
                    buffer.flip()
                    channel.send(ByteArray(count).also { buffer.get(it) })
                    if (count == buffer.capacity() && count < BULK_PIPE && Fds.growPipe(fd, BULK_PIPE)) {
                        buffer = ByteBuffer.allocateDirect(BULK_PIPE)
                    }
                } while (input.available() > 0)
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

    private companion object {
        const val CHANNEL_CHUNKS = 8
        const val DEFAULT_PIPE = 64 * 1024
        const val BULK_PIPE = 1024 * 1024
    }
}
