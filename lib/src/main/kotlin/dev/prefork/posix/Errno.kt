package dev.prefork.posix

import java.io.IOException

/** "error=2 (ENOENT), No such file or directory": the form the JDK uses, plus the symbolic name. */
internal fun describeErrno(errno: Int): String {
    val constant = jnr.constants.platform.Errno.valueOf(errno.toLong())
    val name = if (constant.defined()) " (${constant.name})" else ""
    val text = if (constant.defined()) constant.description() else "unknown error"
    return "error=$errno$name, $text"
}

/** An I/O failure of one libc call; [errno] is the C error number. */
internal class ErrnoException(message: String, val errno: Int) : IOException(message)

internal fun errnoException(what: String, errno: Int = Native.errno()): ErrnoException =
    ErrnoException("$what: ${describeErrno(errno)}", errno)

/** Throws (with errno) unless [result] is non-negative; returns it otherwise. */
internal fun checkErrno(result: Int, what: () -> String): Int {
    if (result < 0) {
        val errno = Native.errno() // before anything else can call C
        throw errnoException(what(), errno)
    }
    return result
}

/** For the posix_spawn family, which returns the error number instead of setting errno. */
internal fun checkReturned(error: Int, what: () -> String) {
    if (error != 0) throw ErrnoException("${what()}: ${describeErrno(error)}", error)
}
