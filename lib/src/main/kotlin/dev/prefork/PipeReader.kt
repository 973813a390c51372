package dev.prefork

import kotlinx.coroutines.channels.ReceiveChannel
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.runBlocking
import java.io.EOFException
import java.io.InputStream

/**
 * The parent's side of a child's stdout or stderr: a [channel] of byte chunks, in the order
 * the child wrote them, closed when the child (and everything it shared the pipe with) has
 * closed its end and every byte was delivered.
 *
 * Use either [channel] directly or the read functions; the read functions keep the bytes
 * they received past what they returned for the next call, which [channel] never sees again.
 * One reader at a time: this class is not safe for concurrent readers.
 * Each suspending function has a blocking twin of the same name for Java.
 */
public class PipeReader internal constructor(
    @get:JvmName("channel") public val channel: ReceiveChannel<ByteArray>,
    private val name: String,
) {
    private var buffer = ByteArray(0)
    private var start = 0
    private var end = 0
    private var closed = false

    /** Reads through the first [delimiter] and returns everything up to and including it. */
    @JvmSynthetic
    public suspend fun readUntil(delimiter: ByteArray): ByteArray {
        require(delimiter.isNotEmpty()) { "delimiter is empty" }
        var searchFrom = start
        while (true) {
            val at = indexOf(delimiter, searchFrom)
            if (at >= 0) return take(at + delimiter.size - start)
            searchFrom = maxOf(start, end - delimiter.size + 1)
            if (!fill()) {
                throw EOFException("$name closed after ${end - start} bytes without the delimiter")
            }
        }
    }

    /** Reads exactly [n] bytes. */
    @JvmSynthetic
    public suspend fun readBytes(n: Int): ByteArray {
        require(n >= 0) { "n < 0: $n" }
        while (end - start < n) {
            if (!fill()) throw EOFException("$name closed after ${end - start} of $n bytes")
        }
        return take(n)
    }

    /** Reads everything until the child closes the pipe. */
    @JvmSynthetic
    public suspend fun readUntilClose(): ByteArray {
        while (fill()) { /* accumulate */ }
        return take(end - start)
    }

    /**
     * The remaining output as UTF-8 lines without their terminators (`\n` or `\r\n`), the
     * last one included even if unterminated. Cold: collect it once.
     */
    public fun lines(): Flow<String> = flow {
        val newline = byteArrayOf('\n'.code.toByte())
        while (true) {
            val line = try {
                readUntil(newline)
            } catch (eof: EOFException) {
                if (end > start) emit(take(end - start).decodeToString())
                return@flow
            }
            val length = line.size - if (line.size >= 2 && line[line.size - 2] == '\r'.code.toByte()) 2 else 1
            emit(line.decodeToString(0, length))
        }
    }

    /** Up to [max] bytes, as soon as any are there; null at end of stream. */
    internal suspend fun readSome(max: Int): ByteArray? {
        if (end == start && !fill()) return null
        return take(minOf(max, end - start))
    }

    @JvmName("readUntil")
    @Throws(java.io.IOException::class, InterruptedException::class)
    public fun readUntilBlocking(delimiter: ByteArray): ByteArray = runBlocking { readUntil(delimiter) }

    @JvmName("readBytes")
    @Throws(java.io.IOException::class, InterruptedException::class)
    public fun readBytesBlocking(n: Int): ByteArray = runBlocking { readBytes(n) }

    @JvmName("readUntilClose")
    @Throws(java.io.IOException::class, InterruptedException::class)
    public fun readUntilCloseBlocking(): ByteArray = runBlocking { readUntilClose() }

    /** A blocking [InputStream] over the same bytes; closing it stops the pipe. */
    public fun inputStream(): InputStream = PipeInputStream(this)

    /** Appends the next chunk; false at end of stream. */
    private suspend fun fill(): Boolean {
        if (closed) return false
        val chunk = channel.receiveCatching().let { result ->
            result.exceptionOrNull()?.let { throw it }
            result.getOrNull()
        }
        if (chunk == null) {
            closed = true
            return false
        }
        if (start == end) {
            buffer = chunk
            start = 0
            end = chunk.size
            return true
        }
        if (buffer.size - end < chunk.size) {
            val live = end - start
            val grown = if (live + chunk.size <= buffer.size) buffer else ByteArray(maxOf(buffer.size * 2, live + chunk.size))
            System.arraycopy(buffer, start, grown, 0, live)
            buffer = grown
            start = 0
            end = live
        }
        System.arraycopy(chunk, 0, buffer, end, chunk.size)
        end += chunk.size
        return true
    }

    private fun indexOf(delimiter: ByteArray, from: Int): Int {
        outer@ for (i in from..end - delimiter.size) {
            for (j in delimiter.indices) if (buffer[i + j] != delimiter[j]) continue@outer
            return i
        }
        return -1
    }

    private fun take(n: Int): ByteArray {
        val out = if (start == 0 && n == buffer.size) buffer else buffer.copyOfRange(start, start + n)
        start += n
        if (start == end) {
            buffer = EMPTY
            start = 0
            end = 0
        }
        return out
    }

    private class PipeInputStream(private val reader: PipeReader) : InputStream() {
        override fun read(): Int {
            val one = runBlocking { reader.readSome(1) } ?: return -1
            return one[0].toInt() and 0xff
        }

        override fun read(b: ByteArray, off: Int, len: Int): Int {
            java.util.Objects.checkFromIndexSize(off, len, b.size)
            if (len == 0) return 0
            val chunk = runBlocking { reader.readSome(len) } ?: return -1
            System.arraycopy(chunk, 0, b, off, chunk.size)
            return chunk.size
        }

        override fun available(): Int = reader.end - reader.start

        override fun close() {
            reader.channel.cancel()
        }
    }

    private companion object {
        val EMPTY = ByteArray(0)
    }
}
