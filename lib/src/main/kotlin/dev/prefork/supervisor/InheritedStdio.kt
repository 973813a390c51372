package dev.prefork.supervisor

import dev.prefork.log.logger
import dev.prefork.log.warn
import java.lang.reflect.Method
import java.nio.channels.Channel

private val logger = logger("dev.prefork.supervisor.InheritedStdio")

/**
 * Closing the channel `System.inheritedChannel()` returned makes the JDK point fds 0, 1 and 2
 * at /dev/null (`InheritedChannel.detachIOStreams`, for inetd-style programs whose stdout is
 * the socket). A worker's stdout and stderr are its log, so they are kept: copied before the
 * close and put back right after, with the JDK's own `dup`/`dup2` (no native binding on this path). What
 * another thread writes in between, microseconds, is lost; fd 0 stays /dev/null.
 */
internal object InheritedStdio {
    fun closeKeepingOutput(channel: Channel) {
        val natives: Natives
        val saved: Pair<Int, Int>
        try {
            natives = Natives()
            saved = natives.dup(1) to natives.dup(2)
        } catch (e: Exception) { // reflection refused (no --add-opens), or stdout/stderr already closed
            logger.warn { "cannot keep stdout and stderr across closing the inherited channel (${e.cause ?: e}): output after this is lost" }
            runCatching { channel.close() }
            return
        }
        try {
            runCatching { channel.close() }
        } finally {
            runCatching { natives.dup2(saved.first, 1) }
            runCatching { natives.dup2(saved.second, 2) }
            runCatching { natives.close(saved.first) }
            runCatching { natives.close(saved.second) }
        }
    }

    private class Natives {
        private val type = Class.forName("sun.nio.ch.InheritedChannel")
        private val dup: Method = method("dup", Int::class.javaPrimitiveType!!)
        private val dup2: Method = method("dup2", Int::class.javaPrimitiveType!!, Int::class.javaPrimitiveType!!)
        private val close0: Method = method("close0", Int::class.javaPrimitiveType!!)

        fun dup(fd: Int): Int = dup.invoke(null, fd) as Int
        fun dup2(from: Int, to: Int) {
            dup2.invoke(null, from, to)
        }
        fun close(fd: Int) {
            close0.invoke(null, fd)
        }

        private fun method(name: String, vararg parameters: Class<*>): Method =
            type.getDeclaredMethod(name, *parameters).apply { isAccessible = true }
    }
}
