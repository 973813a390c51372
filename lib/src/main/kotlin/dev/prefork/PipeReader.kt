package dev.prefork

import dev.prefork.io.PipeSource
import dev.prefork.posix.Fds
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.channels.ReceiveChannel
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
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
 * Each suspending function but [read] has a blocking twin of the same name for Java; [read]'s
 * is [inputStream], the fastest way to read from Java, and once taken, the only one. [read] is
 * the fastest way from Kotlin: both read the pipe straight into the caller's array.
 */
public class PipeReader internal constructor(
    private val source: PipeSource,
    private val name: String,
) {
    /**
     * The chunks as the pump read them from the pipe (each array is the receiver's), closed at
     * end of stream. Java: `channel()`; from Java, [inputStream] or the blocking reads are easier.
     */
    @get:JvmName("channel")
    public val channel: ReceiveChannel<ByteArray> = source.output

    private var buffer = ByteArray(0)
    private var start = 0
    private var end = 0
    private var closed = false

    /** Reads through the first [delimiter] and returns everything up to and including it. */
    @JvmSynthetic
    public suspend fun readUntil(delimiter: ByteArray): ByteArray {
        require(delimiter.isNotEmpty()) { "delimiter is empty" }
        // Counted from start: a fill may move the bytes held to the front of the buffer.
        var searched = 0
        while (true) {
            val at = indexOf(delimiter, start + searched)
            if (at >= 0) return take(at + delimiter.size - start)
            searched = maxOf(0, end - start - delimiter.size + 1)
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

    /**
     * Reads up to [length] bytes into [buffer] at [offset], suspending until at least one is
     * there; returns how many, or -1 at end of stream. The coroutine twin of
     * [InputStream.read], and the fastest way to read a large output from Kotlin.
     *
     * The first call that finds no byte held stops the pump: after the chunks it had read
     * already, the pipe is read straight into the caller's array, on the caller's thread,
     * suspending on the reactor only while the pipe is empty. The kernel's copy is the only
     * one, and no array is made per read, where [channel] hands on a new one with every chunk.
     * From then on [channel] must not be used (what it would still receive, this reads); the
     * other read functions, and an [inputStream] taken afterwards, go on reading the pipe.
     * From Java: [inputStream].
     *
     * @throws java.io.IOException if the process was closed (before or during the read).
     * @throws IllegalStateException if [inputStream] was taken before: read through it.
     */
    @JvmSynthetic
    public suspend fun read(buffer: ByteArray, offset: Int = 0, length: Int = buffer.size - offset): Int {
        java.util.Objects.checkFromIndexSize(offset, length, buffer.size)
        if (length == 0) return 0
        if (end == start && !direct) {
            if (!takenOver) takeOver()
            // The pump's last chunks, then the switch to the pipe itself, which this read then reads.
            while (end == start && !direct) {
                val chunk = receiveChunk() ?: return (-1).also { closed = true }
                if (chunk !== SWITCHED) append(chunk)
            }
        }
        if (end > start) {
            val count = minOf(length, end - start)
            System.arraycopy(this.buffer, start, buffer, offset, count)
            skip(count)
            return count
        }
        return readPipe(buffer, offset, length)
    }

    /** Whether [read] stopped the pump ([PipeSource.handOver]), to read the pipe itself. Guarded by `this`, as [shut]. */
    private var takenOver = false

    /** Whether the pump's last chunk was received after [takenOver]: the pipe is read here from then on. */
    private var direct = false

    private fun takeOver() {
        synchronized(this) {
            if (shut) throw java.io.IOException("$name was closed")
            check(stream == null) { "inputStream() of $name was taken: read through it" }
            takenOver = true
        }
        source.handOver()
    }

    /** A read straight from the pipe, once [direct]; -1 at end of stream. */
    private suspend fun readPipe(bytes: ByteArray, offset: Int, length: Int): Int {
        if (closed) return -1
        val count = source.readAfterHandOver(bytes, offset, length)
        if (count == PipeSource.RELEASED) throw java.io.IOException("$name was closed")
        if (count < 0) {
            closed = true
            source.release() // the end: the fd goes now, not only at close()
        }
        return count
    }

    /** Up to [max] bytes, as soon as any are there; null at end of stream. */
    internal suspend fun readSome(max: Int): ByteArray? {
        if (end == start && !fill()) return null
        return take(minOf(max, end - start))
    }

    /**
     * Java's `readUntil(delimiter)`: [readUntil], blocking the calling thread.
     *
     * @throws java.io.EOFException if the pipe closes before the delimiter came.
     */
    @JvmName("readUntil")
    @Throws(java.io.IOException::class, InterruptedException::class)
    public fun readUntilBlocking(delimiter: ByteArray): ByteArray = runBlocking { readUntil(delimiter) }

    /**
     * Java's `readBytes(n)`: [readBytes], blocking the calling thread.
     *
     * @throws java.io.EOFException if the pipe closes before [n] bytes came.
     */
    @JvmName("readBytes")
    @Throws(java.io.IOException::class, InterruptedException::class)
    public fun readBytesBlocking(n: Int): ByteArray = runBlocking { readBytes(n) }

    /** Java's `readUntilClose()`: [readUntilClose], blocking the calling thread. */
    @JvmName("readUntilClose")
    @Throws(java.io.IOException::class, InterruptedException::class)
    public fun readUntilCloseBlocking(): ByteArray = runBlocking { readUntilClose() }

    private var stream: PipeInputStream? = null

    /** [close] ran: a stream taken afterwards starts closed. */
    private var shut = false

    /**
     * A blocking [InputStream] over the same bytes (the same one each time); closing it closes
     * the pipe. It reads the pipe itself, into the caller's array: the kernel's copy is the only
     * one, as with the JDK's own process streams. Once it is taken, the channel and the read
     * functions must not be used: what they would still receive, the stream would not.
     */
    public fun inputStream(): InputStream = synchronized(this) {
        stream ?: PipeInputStream(this).also {
            stream = it
            if (shut) it.close() else source.handOver()
        }
    }

    /** Whether [close] ran: a read that fails afterwards failed because of it. */
    internal val wasClosed: Boolean get() = synchronized(this) { shut }

    /** Closes the pipe, whichever way it is read. */
    internal fun close() {
        // A stream read to its end here is closed already; cancelling it anyway would make an exception, stack trace and all.
        if (!closed) channel.cancel()
        val (taken, readHere) = synchronized(this) {
            shut = true
            stream to takenOver
        }
        taken?.close()
        // Taken over by read(): the fd is closed here, or by a read still under way as it returns.
        if (readHere) source.release()
    }

    /** Appends the next chunk; false at end of stream. */
    private suspend fun fill(): Boolean {
        if (closed) return false
        var chunk = if (direct) readChunk() else receiveChunk()
        if (chunk === SWITCHED) chunk = readChunk()
        if (chunk == null) {
            closed = true
            return false
        }
        append(chunk)
        return true
    }

    private fun append(chunk: ByteArray) {
        if (start == end) {
            buffer = chunk
            start = 0
            end = chunk.size
            return
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
    }

    /**
     * The pump's next chunk; null at end of stream, or [SWITCHED] once the pump handed the pipe
     * over to [read] (the pipe is read here from then on, [direct]).
     */
    private suspend fun receiveChunk(): ByteArray? {
        // Handing over, the pump closes the channel at once: a cancelled read waits for that rather than lose a chunk taken meanwhile.
        val result = if (takenOver) withContext(NonCancellable) { channel.receiveCatching() } else channel.receiveCatching()
        result.getOrNull()?.let { return it }
        result.exceptionOrNull()?.let { failure ->
            if (failure is CancellationException && synchronized(this) { shut }) throw java.io.IOException("$name was closed")
            throw failure
        }
        if (!takenOver || !source.handedOver) return null
        direct = true
        return SWITCHED
    }

    /** A chunk read from the pipe itself, once [direct]: the read functions' way after [read]. */
    private suspend fun readChunk(): ByteArray? {
        val bytes = ByteArray(DIRECT_CHUNK)
        val count = readPipe(bytes, 0, bytes.size)
        return if (count < 0) null else bytes.copyOf(count)
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
        skip(n)
        return out
    }

    private fun skip(n: Int) {
        start += n
        if (start == end) {
            buffer = EMPTY
            start = 0
            end = 0
        }
    }

    /**
     * First what the reader holds and the chunks the pump had read, then the pipe itself: a
     * non-blocking read straight into the caller's array, and a `poll` while it is empty.
     */
    private class PipeInputStream(private val reader: PipeReader) : InputStream() {
        /** Whether the pump is done and the fd is read here. */
        private var direct = false
        private var ended = false
        private val lock = Object()

        /** Threads inside read() or available(): the fd is closed only when none is. */
        private var users = 0
        @Volatile private var closed = false

        override fun read(): Int {
            val one = ByteArray(1)
            return if (read(one, 0, 1) < 0) -1 else one[0].toInt() and 0xff
        }

        override fun read(b: ByteArray, off: Int, len: Int): Int {
            java.util.Objects.checkFromIndexSize(off, len, b.size)
            if (len == 0) return 0
            enter()
            try {
                return if (direct) readPipe(b, off, len) else readBuffered(b, off, len)
            } finally {
                leave()
            }
        }

        private fun enter() {
            synchronized(lock) {
                if (closed) throw java.io.IOException("Stream closed")
                users++
            }
        }

        private fun leave() {
            synchronized(lock) {
                users--
                if (closed && users == 0) closeFd()
            }
        }

        private fun readBuffered(b: ByteArray, off: Int, len: Int): Int {
            // The pump stops soon after the hand-over: what it read before arrives here, then the end of the channel.
            val chunk = try {
                runBlocking { reader.readSome(len) }
            } catch (cancelled: kotlinx.coroutines.CancellationException) {
                throw java.io.IOException("Stream closed") // closed from another thread meanwhile
            }
            if (chunk != null) {
                System.arraycopy(chunk, 0, b, off, chunk.size)
                return chunk.size
            }
            // After read() took the pipe over, readSome read it too (counted by the source), up to its end.
            if (!reader.source.handedOver || synchronized(reader) { reader.takenOver }) {
                ended = true
                return -1
            }
            direct = true
            return readPipe(b, off, len)
        }

        private fun readPipe(b: ByteArray, off: Int, len: Int): Int {
            if (ended) return -1
            val fd = reader.source.readFd
            while (true) {
                val count = reader.source.read(b, off, len)
                if (count > 0) return count
                if (count < 0) {
                    ended = true
                    reader.source.release() // the end: the fd goes now, not only at close()
                    return -1
                }
                // Empty: wait, a little at a time, so that a close() from another thread is seen.
                while (!Fds.pollReadable(fd, POLL_MILLIS)) {
                    if (closed) throw java.io.IOException("Stream closed")
                }
            }
        }

        override fun available(): Int {
            if (!direct) return reader.end - reader.start
            if (ended) return 0
            enter()
            try {
                return Fds.available(reader.source.readFd)
            } finally {
                leave()
            }
        }

        override fun close() {
            reader.channel.cancel()
            synchronized(lock) {
                closed = true
                if (users == 0) closeFd()
            }
        }

        /** Under [lock], once nobody reads (release() is idempotent). */
        private fun closeFd() {
            reader.source.release()
        }

        private companion object {
            const val POLL_MILLIS = 100
        }
    }

    private companion object {
        val EMPTY = ByteArray(0)

        /** [receiveChunk]'s answer once the pipe is read here. */
        val SWITCHED = ByteArray(0)

        /** The read functions' array for a read from the pipe itself. */
        private const val DIRECT_CHUNK = 16 * 1024
    }
}
