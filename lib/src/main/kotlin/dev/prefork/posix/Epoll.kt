package dev.prefork.posix

import dev.prefork.posix.Native.posix

/**
 * An epoll instance, plus an eventfd to wake its waiter early. Only one thread may [wait];
 * [arm], [remove] and [wake] are safe from any thread (epoll_ctl is).
 *
 * `struct epoll_event` is packed to 12 bytes on x86_64 and padded to 16 elsewhere.
 */
internal class Epoll(private val capacity: Int = 128) {
    private val fd: Int = checkErrno(posix.epoll_create1(Linux.EPOLL_CLOEXEC)) { "epoll_create1" }
    private val wakeFd: Int = checkErrno(posix.eventfd(0, Linux.EFD_CLOEXEC or Linux.EFD_NONBLOCK)) { "eventfd" }
    private val eventSize = System.getProperty("os.arch").let { if (it == "amd64" || it == "x86_64") 12L else 16L }
    private val dataOffset = if (eventSize == 12L) 4L else 8L

    // Native blocks of the one instance the reactor keeps for the JVM's life: never freed.
    private val events: Long = posix.allocate(eventSize * capacity)
    private val scratch: Long = posix.allocate(8L)
    private val wakeValue: Long = posix.allocate(8L).also { posix.putLong(it, 1L) }

    init {
        ctl(Linux.EPOLL_CTL_ADD, wakeFd, Linux.EPOLLIN, WAKE_TOKEN)
    }

    /** Adds ([add]) or re-arms [target] for [interest]; [token] is what [wait] reports for it. */
    fun arm(target: Int, interest: Int, token: Long, add: Boolean) {
        ctl(if (add) Linux.EPOLL_CTL_ADD else Linux.EPOLL_CTL_MOD, target, interest, token)
    }

    fun remove(target: Int) {
        posix.epoll_ctl(fd, Linux.EPOLL_CTL_DEL, target, 0L)
    }

    private fun ctl(op: Int, target: Int, interest: Int, token: Long) = withNativeMemory(16L) { event ->
        posix.putInt(event, interest)
        posix.putLong(event + dataOffset, token)
        checkErrno(posix.epoll_ctl(fd, op, target, event)) { "epoll_ctl fd $target" }
    }

    /** Makes the current or next [wait] return at once. */
    fun wake() {
        posix.write(wakeFd, wakeValue, 8)
    }

    /**
     * Waits up to [timeoutMillis] (-1: without limit) and calls [onEvent] with the token and
     * event bits of everything ready. Wake-ups are consumed here and not reported.
     */
    fun wait(timeoutMillis: Int, onEvent: (token: Long, events: Int) -> Unit) {
        val count = posix.epoll_wait(fd, events, capacity, timeoutMillis)
        if (count < 0) {
            val errno = Native.errno()
            if (errno == Linux.EINTR) return
            throw errnoException("epoll_wait", errno)
        }
        for (i in 0 until count) {
            val base = i * eventSize
            val token = posix.getLong(events + base + dataOffset)
            if (token == WAKE_TOKEN) posix.read(wakeFd, scratch, 8) else onEvent(token, posix.getInt(events + base))
        }
    }

    private companion object {
        const val WAKE_TOKEN = -1L
    }
}
