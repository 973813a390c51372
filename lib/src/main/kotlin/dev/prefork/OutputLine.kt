package dev.prefork

import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.merge

/** Which of a child's output streams a line came from. */
public enum class StdStream {
    /** The child's standard output, fd 1. */
    STDOUT,

    /** The child's standard error, fd 2. */
    STDERR,
}

/** One line a child wrote, without its terminator, and the [stream] it wrote it to. */
public class OutputLine(
    /** The stream the line was read from. Java: `stream()`. */
    @get:JvmName("stream") public val stream: StdStream,
    /** The line, decoded as UTF-8, without its terminator. Java: `text()`. */
    @get:JvmName("text") public val text: String,
) {
    /** Equal when both the stream and the text are. */
    override fun equals(other: Any?): Boolean = other is OutputLine && other.stream == stream && other.text == text

    /** Consistent with [equals]. */
    override fun hashCode(): Int = 31 * stream.hashCode() + text.hashCode()

    /** `STDOUT: text` or `STDERR: text`. */
    override fun toString(): String = "$stream: $text"
}

/**
 * The lines of [stdout] and [stderr] (either may be null, not both) in the order their reads
 * complete: each stream's own order is kept, and a pause between writes to the two streams
 * orders them as written. A child's stream buffers its writes as it likes (C's stdio buffers a
 * pipe): interleaving is only as fine as its flushes.
 */
internal fun mergeLines(command: List<String>, stdout: PipeReader?, stderr: PipeReader?): Flow<OutputLine> {
    check(stdout != null || stderr != null) { "neither stdout nor stderr is Redirect.STREAM: $command" }
    val tagged = ArrayList<Flow<OutputLine>>(2)
    stdout?.let { reader -> tagged.add(reader.lines().map { OutputLine(StdStream.STDOUT, it) }) }
    stderr?.let { reader -> tagged.add(reader.lines().map { OutputLine(StdStream.STDERR, it) }) }
    return tagged.merge()
}
