package dev.prefork.io

import dev.prefork.posix.Fds
import dev.prefork.posix.Linux
import dev.prefork.reaper.Background
import dev.prefork.reaper.Reactor
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.ReceiveChannel
import kotlinx.coroutines.launch
import java.io.FileInputStream
import java.io.IOException

/**
 * Pumps the parent's read end of a pipe into a [Channel] of byte chunks, without a thread of
 * its own: it waits for readiness on the [Reactor], then reads on [Background]'s dispatcher.
 *
 * Reads go through a [FileInputStream] opened on `/proc/self/fd/N`: a second, blocking open
 * of the same pipe, which the JDK reads faster than any FFI call can (SPEC section 6). The
 * original fd [fd] is kept only to ask epoll about readiness, so a read never blocks: it
 * runs only after the pipe reported data or hang-up, and [FileInputStream.available]
 * (FIONREAD) says whether to read on or wait again.
 *
 * Chunks start at 64 KiB; a stream that fills them grows them, and the pipe, to 1 MiB.
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

    fun start() {
        Background.launch { pump() }
    }

    /** Releases everything when the child could not be started. */
    fun abandon() {
        input.close()
        Fds.closeQuietly(fd)
        channel.close()
    }

    private suspend fun pump() {
        val readiness = reactor.readiness(fd)
        var failure: Throwable? = null
        try {
            var chunk = INITIAL_CHUNK
            while (true) {
                readiness.await(Linux.EPOLLIN)
                do {
                    val buffer = ByteArray(chunk)
                    val count = input.read(buffer)
                    if (count < 0) return
                    channel.send(if (count == chunk) buffer else buffer.copyOf(count))
                    if (count == chunk && chunk < MAX_CHUNK) {
                        chunk *= 2
                        if (chunk == MAX_CHUNK) Fds.growPipe(fd, MAX_CHUNK)
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
            channel.close(failure?.takeUnless { it is kotlinx.coroutines.CancellationException })
        }
    }

    private companion object {
        const val CHANNEL_CHUNKS = 8
        const val INITIAL_CHUNK = 64 * 1024
        const val MAX_CHUNK = 1024 * 1024
    }
}
