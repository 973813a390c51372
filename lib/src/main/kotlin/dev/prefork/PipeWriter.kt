package dev.prefork

import kotlinx.coroutines.channels.ClosedSendChannelException
import kotlinx.coroutines.channels.SendChannel
import kotlinx.coroutines.runBlocking
import java.io.IOException
import java.io.OutputStream

/**
 * The parent's side of a child's stdin: a [channel] of byte chunks that a pump writes to the
 * pipe in order. [write] suspends only while the pipe and a small queue are full.
 *
 * [close] lets the queued bytes drain and then closes the pipe: the child reads end-of-file
 * after everything written before. Writing after [close], or after the child closed its end,
 * throws an [IOException] that names the process.
 * The caller gives up ownership of each array it writes: do not change it afterwards.
 */
public class PipeWriter internal constructor(
    /** The queue the pump drains into the pipe; [close] it, or call [close], for end-of-file. Java: `channel()`. */
    @get:JvmName("channel") public val channel: SendChannel<ByteArray>,
    private val name: String,
) {
    @Volatile private var closedByCaller = false

    @Volatile private var processExited = false

    /**
     * Queues [bytes] for the child; suspends while the queue is full. An empty array is
     * ignored. Returning does not mean the child has read them.
     *
     * @throws IOException if stdin was closed, by [close] or because the child exited.
     */
    @JvmSynthetic
    public suspend fun write(bytes: ByteArray) {
        if (bytes.isEmpty()) return
        try {
            channel.send(bytes)
        } catch (closed: ClosedSendChannelException) {
            throw IOException("$name is closed" + if (!closedByCaller && processExited) ": the process exited" else "", closed)
        }
    }

    /** Closes stdin once the queued bytes are written. Idempotent. */
    public fun close() {
        closedByCaller = true
        channel.close()
    }

    internal fun closeAfterExit() {
        processExited = true
        channel.close()
    }

    /** Java's `write(bytes)`: [write], blocking the calling thread while the queue is full. */
    @JvmName("write")
    @Throws(IOException::class, InterruptedException::class)
    public fun writeBlocking(bytes: ByteArray): Unit = runBlocking { write(bytes) }

    /** A blocking [OutputStream] over this pipe; [OutputStream.close] closes stdin. */
    public fun outputStream(): OutputStream = object : OutputStream() {
        override fun write(b: Int) = writeBlocking(byteArrayOf(b.toByte()))

        override fun write(b: ByteArray, off: Int, len: Int) {
            java.util.Objects.checkFromIndexSize(off, len, b.size)
            writeBlocking(b.copyOfRange(off, off + len))
        }

        override fun close() = this@PipeWriter.close()
    }
}
