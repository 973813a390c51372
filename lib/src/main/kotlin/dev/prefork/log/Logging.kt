package dev.prefork.log

import org.slf4j.Logger
import org.slf4j.LoggerFactory

// prefork logs through SLF4J, the API every JVM logging set-up speaks, and nothing else: no
// logging facade of its own between them, so no start-up banner in every worker's output and no
// Kotlin library for a Java user's build to carry. Messages are built only when their level is on.

/** The logger of one source file: [name] is its package and file name, as a class's logger would be named. */
internal fun logger(name: String): Logger = LoggerFactory.getLogger(name)

internal inline fun Logger.debug(message: () -> Any?) {
    if (isDebugEnabled) debug(message().toString())
}

internal inline fun Logger.info(message: () -> Any?) {
    if (isInfoEnabled) info(message().toString())
}

internal inline fun Logger.warn(message: () -> Any?) {
    if (isWarnEnabled) warn(message().toString())
}

internal inline fun Logger.warn(cause: Throwable?, message: () -> Any?) {
    if (isWarnEnabled) warn(message().toString(), cause)
}

internal inline fun Logger.error(message: () -> Any?) {
    if (isErrorEnabled) error(message().toString())
}

internal inline fun Logger.error(cause: Throwable?, message: () -> Any?) {
    if (isErrorEnabled) error(message().toString(), cause)
}
