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

/** Throws unless [result] is non-negative; returns it otherwise. */
internal fun check(result: Int, what: () -> String): Int {
    if (result < 0) throw errnoException(what())
    return result
}
