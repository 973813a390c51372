package dev.prefork.netty

import java.io.FileDescriptor
import java.nio.channels.ServerSocketChannel

/**
 * Takes the file descriptor out of a JDK channel so that one owner is left: Netty's native
 * channel gets the number, and the JDK channel's descriptor is set to -1, on which the JDK's
 * close does nothing. Two owners of one number would be a hazard: the second close could hit
 * an unrelated file that reused the number. Needs `--add-opens java.base/sun.nio.ch`, which
 * prefork puts on the command line of the workers it starts.
 */
internal object FdHandover {
    fun take(socket: ServerSocketChannel): Int {
        try {
            val descriptor = Class.forName("sun.nio.ch.SelChImpl").getMethod("getFD").invoke(socket) as FileDescriptor
            val ioUtil = Class.forName("sun.nio.ch.IOUtil")
            val fdVal = ioUtil.getDeclaredMethod("fdVal", FileDescriptor::class.java).apply { isAccessible = true }
            val setFdVal = ioUtil.getDeclaredMethod("setfdVal", FileDescriptor::class.java, Int::class.javaPrimitiveType)
                .apply { isAccessible = true }
            synchronized(descriptor) {
                val fd = fdVal.invoke(null, descriptor) as Int
                check(fd >= 0) { "the descriptor of $socket was already handed over or closed" }
                setFdVal.invoke(null, descriptor, -1)
                return fd
            }
        } catch (e: ReflectiveOperationException) {
            throw cannotTake(socket, e)
        } catch (e: RuntimeException) {
            if (e is IllegalStateException) throw e
            throw cannotTake(socket, e) // InaccessibleObjectException, on a JVM without the --add-opens
        }
    }

    private fun cannotTake(socket: ServerSocketChannel, cause: Exception) = IllegalStateException(
        "cannot hand the descriptor of $socket to Netty's epoll transport: the JVM needs " +
            "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED (prefork adds it when it re-executes a java launcher)",
        cause,
    )
}
