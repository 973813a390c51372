package dev.prefork.io

import dev.prefork.posix.ErrnoException
import dev.prefork.posix.Fds
import dev.prefork.posix.Linux
import dev.prefork.posix.Native
import dev.prefork.posix.errnoException
import dev.prefork.reaper.Background
import dev.prefork.reaper.Reactor
import jnr.ffi.Memory
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.SendChannel
import kotlinx.coroutines.launch
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

    /** Starts pumping; runs on the caller's thread until the first wait for data. */
    fun start() {
        Background.launch(start = CoroutineStart.UNDISPATCHED) { pump() }
    }

    fun abandon() {
        Fds.closeQuietly(fd)
        channel.close()
    }

    private suspend fun pump() {
        val readiness = reactor.readiness(fd)
        // Allocated at the first chunk: a stdin that is only ever closed costs no native memory.
        val buffer by lazy { Memory.allocateDirect(Native.runtime, SEGMENT.toLong()) }
        try {
            for (chunk in channel) {
                var offset = 0
                while (offset < chunk.size) {
                    val length = minOf(SEGMENT, chunk.size - offset)
                    buffer.put(0, chunk, offset, length)
                    val written = Native.libc.write(fd, buffer, length.toLong())
                    if (written >= 0) {
                        offset += written.toInt()
                        continue
                    }
                    when (val errno = Native.errno()) {
                        Linux.EAGAIN -> readiness.await(Linux.EPOLLOUT)
                        Linux.EINTR -> {}
                        Linux.EPIPE -> throw ErrnoException("$name: the process closed its end of the pipe (EPIPE)", errno)
                        else -> throw errnoException("write to $name", errno)
                    }
                }
            }
        } catch (e: IOException) {
            channel.close(e)
            channel.cancel()
        } finally {
            readiness.close()
            Fds.closeQuietly(fd)
        }
    }

    private companion object {
        const val CHANNEL_CHUNKS = 16
        const val SEGMENT = 64 * 1024
    }
}
