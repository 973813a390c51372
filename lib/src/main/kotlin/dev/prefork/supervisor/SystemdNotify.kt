package dev.prefork.supervisor

import dev.prefork.log.logger
import dev.prefork.log.warn
import dev.prefork.posix.Native
import dev.prefork.posix.checkErrno
import dev.prefork.posix.describeErrno
import dev.prefork.posix.withNativeMemory

private val logger = logger("dev.prefork.supervisor.SystemdNotify")

/**
 * systemd's notification protocol (`sd_notify`): with `NOTIFY_SOCKET` set, the supervisor
 * sends its state as datagrams on that unix socket (a path, or `@name` in the abstract
 * namespace): `READY=1` once every worker serves, `RELOADING=1` and `READY=1` around a rolling
 * restart, `STOPPING=1` on a graceful stop, a `STATUS=` line with every change, and
 * `WATCHDOG=1` every half of `WATCHDOG_USEC` while its event loop runs (when `WATCHDOG_PID`,
 * if set, is this process). Workers do not inherit the variables ([VARIABLES]): only the
 * service's main process speaks to systemd.
 *
 * A datagram that cannot be sent is logged once and otherwise ignored, as `sd_notify` does: the
 * service keeps running whatever its manager hears.
 */
internal class SystemdNotify private constructor(private val socketPath: String) {
    private val fd: Int = checkErrno(Native.posix.socket(AF_UNIX, SOCK_DGRAM or SOCK_CLOEXEC, 0)) { "socket(AF_UNIX, SOCK_DGRAM)" }
    private var failed = false

    /** How often to send `WATCHDOG=1` (half of `WATCHDOG_USEC`), or null when systemd watches nothing. */
    val watchdogMillis: Long? = System.getenv("WATCHDOG_USEC")?.toLongOrNull()?.takeIf { it > 0 }
        ?.takeIf { System.getenv("WATCHDOG_PID")?.toLongOrNull().let { pid -> pid == null || pid == ProcessHandle.current().pid() } }
        ?.let { maxOf(1L, it / 2_000) }

    /** Sends one datagram of newline-separated `KEY=value` assignments. */
    fun send(state: String) {
        val posix = Native.posix
        val message = state.toByteArray()
        val path = socketPath.toByteArray()
        // struct sockaddr_un: sa_family_t (2 bytes), then the path; an abstract name starts with a NUL instead of '@'.
        val addressLength = 2 + path.size
        withNativeMemory(addressLength.toLong() + message.size) { block ->
            posix.putShort(block, AF_UNIX.toShort())
            posix.putBytes(block + 2, path, 0, path.size)
            if (path[0] == '@'.code.toByte()) posix.putBytes(block + 2, NUL, 0, 1)
            posix.putBytes(block + addressLength, message, 0, message.size)
            val sent = posix.sendto(fd, block + addressLength, message.size.toLong(), MSG_NOSIGNAL, block, addressLength)
            if (sent < 0 && !failed) {
                val errno = Native.errno()
                failed = true
                logger.warn { "cannot notify systemd on $socketPath (${describeErrno(errno)}); later notifications are not reported" }
            }
        }
    }

    companion object {
        /** The variables of the protocol, which no worker may inherit. */
        val VARIABLES = listOf("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")

        private const val AF_UNIX = 1
        private const val SOCK_DGRAM = 2
        private const val SOCK_CLOEXEC = 0x80000
        private const val MSG_NOSIGNAL = 0x4000
        private const val MAX_PATH = 107
        private val NUL = byteArrayOf(0)

        /** The notifier of this process, or null when systemd gave it no `NOTIFY_SOCKET` (or a bad one, logged). */
        fun fromEnvironment(): SystemdNotify? {
            val path = System.getenv("NOTIFY_SOCKET")?.takeIf { it.isNotEmpty() } ?: return null
            if ((path[0] != '/' && path[0] != '@') || path.toByteArray().size > MAX_PATH) {
                logger.warn { "NOTIFY_SOCKET=\"$path\" is neither a socket path nor an abstract name (@name) of at most $MAX_PATH bytes: systemd is not notified" }
                return null
            }
            return SystemdNotify(path)
        }
    }
}
