package dev.prefork.io

import dev.prefork.posix.Fds
import dev.prefork.posix.Linux
import dev.prefork.reaper.Background
import dev.prefork.reaper.Reactor
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.SendChannel
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import java.io.IOException

/**
 * Pumps a [Channel] of byte chunks into the parent's write end of a pipe: non-blocking
 * writes, and a readiness wait on the [Reactor] whenever the pipe is full.
 *
 * Closing the channel flushes what it holds and then closes the pipe, so the child reads
 * end-of-file only after everything written before the close. If the child stops reading
 * (EPIPE), the channel is closed with an [IOException] that names [name], and the next
 * send throws it.
 */
internal class PipeSink(private val fd: Int, private val reactor: Reactor, private val name: String) {
    private val channel = Channel<ByteArray>(CHANNEL_CHUNKS)

    val input: SendChannel<ByteArray> get() = channel

    init {
        Fds.setNonBlocking(fd)
    }

    /**
     * Starts pumping; runs on the caller's thread until the first wait for data. Unconfined: a
     * chunk is written on the thread that sent it while the pipe has room, and the close happens
     * on the thread that closed; once the pipe was full, the writes go on on the IO pool.
     */
    fun start() {
        Background.launch(Dispatchers.Unconfined, start = CoroutineStart.UNDISPATCHED) { pump() }
    }

    fun abandon() {
        Fds.closeQuietly(fd)
        channel.close()
    }

    private suspend fun pump() {
        // Made at the first full pipe: most children's stdin never fills, and a readiness is a reactor entry.
        var readiness: Reactor.Readiness? = null
        try {
            for (chunk in channel) {
                var offset = 0
                while (offset < chunk.size) {
                    // Straight from the caller's array: the kernel's copy is the only one.
                    val written = Fds.write(fd, chunk, offset, minOf(SEGMENT, chunk.size - offset)) { name }
                    // Resumed on the IO pool: a reader that keeps up would otherwise keep the reactor thread writing.
                    if (written == 0) {
                        val full = readiness ?: reactor.readiness(fd).also { readiness = it }
                        withContext(Dispatchers.IO) { full.await(Linux.EPOLLOUT) }
                    } else {
                        offset += written
                    }
                }
            }
        } catch (e: IOException) {
            channel.close(e)
            channel.cancel()
        } finally {
            readiness?.close()
            Fds.closeQuietly(fd)
        }
    }

    private companion object {
        const val CHANNEL_CHUNKS = 16
        const val SEGMENT = 64 * 1024
    }
}
