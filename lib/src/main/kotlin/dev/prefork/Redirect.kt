package dev.prefork

import java.nio.file.Path

/**
 * Where a child's stdin, stdout or stderr goes.
 *
 * [STREAM] gives the parent a pipe ([Subprocess.stdin] / [Subprocess.stdout] /
 * [Subprocess.stderr]); [INHERIT] (the default) shares this process's own; [DEVNULL] is
 * `/dev/null`; [STDOUT], for stderr only, merges it into stdout; [file] reads or writes a file;
 * [toLogger], for stdout or stderr, logs each line.
 */
public sealed class Redirect {
    internal object Stream : Redirect() {
        override fun toString(): String = "STREAM"
    }

    internal object Inherit : Redirect() {
        override fun toString(): String = "INHERIT"
    }

    internal object DevNull : Redirect() {
        override fun toString(): String = "DEVNULL"
    }

    internal object Stdout : Redirect() {
        override fun toString(): String = "STDOUT"
    }

    internal data class ToFile(val path: Path, val append: Boolean) : Redirect()

    internal class ToLogger(val logger: org.slf4j.Logger, val level: org.slf4j.event.Level) : Redirect() {
        override fun toString(): String = "toLogger(${logger.name}, $level)"
    }

    /** The redirects, as constants and factories (Java: `Redirect.STREAM`, `Redirect.file(path)`). */
    public companion object {
        /** A pipe to the parent: the [Subprocess]'s `stdin`, `stdout` or `stderr` reads or writes it. Tornado's `Subprocess.STREAM`. */
        @JvmField public val STREAM: Redirect = Stream

        /** The parent's own stdin, stdout or stderr, shared with the child (the default for all three). */
        @JvmField public val INHERIT: Redirect = Inherit

        /** `/dev/null`: the child reads end-of-file at once, or its output is dropped. */
        @JvmField public val DEVNULL: Redirect = DevNull

        /** stderr only: the child's stderr is a copy of its stdout, whatever that is. */
        @JvmField public val STDOUT: Redirect = Stdout

        /** For stdin, reads [path]; for stdout or stderr, truncates or creates it. */
        @JvmStatic public fun file(path: Path): Redirect = ToFile(path, append = false)

        /** For stdout or stderr: appends to [path], creating it if needed. */
        @JvmStatic public fun appendTo(path: Path): Redirect = ToFile(path, append = true)

        /**
         * For stdout or stderr: a pipe whose every line (UTF-8, without its terminator) prefork
         * logs to [logger] at [level], one call each, from a background thread of its own; the
         * text is the message, never a format. The [Subprocess] then has no reader for that
         * stream (null, as [CompletedProcess] is after `run()`). `waitForExit` returns once the
         * child exited and its lines were all logged (see [Subprocess.waitForExit]).
         */
        @JvmStatic public fun toLogger(logger: org.slf4j.Logger, level: org.slf4j.event.Level): Redirect = ToLogger(logger, level)
    }
}
