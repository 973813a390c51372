package dev.prefork

import dev.prefork.log.debug
import dev.prefork.log.error
import dev.prefork.log.info
import dev.prefork.log.warn
import org.slf4j.Logger
import org.slf4j.event.Level

/**
 * Logs every line of [reader] to [logger] at [level] until the stream ends. Whatever stops it
 * early (the logger threw, or the Subprocess was closed) closes the pipe: a child must not block
 * on a pipe nobody reads any more; its next write gets EPIPE instead. A Subprocess closed while
 * its lines are logged ends the logging quietly: the close was asked for, and is no failure.
 */
internal suspend fun logLines(reader: PipeReader, logger: Logger, level: Level) {
    try {
        reader.lines().collect { line ->
            // The String overloads: a line holding "{}" is logged as it is, not as a format.
            when (level) {
                Level.ERROR -> logger.error(line)
                Level.WARN -> logger.warn(line)
                Level.INFO -> logger.info(line)
                Level.DEBUG -> logger.debug(line)
                Level.TRACE -> logger.trace(line)
            }
        }
    } catch (e: java.io.IOException) {
        if (!reader.wasClosed) throw e
    } finally {
        reader.close()
    }
}
