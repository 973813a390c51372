package dev.prefork.posix

import dev.prefork.posix.Native.libc
import jnr.ffi.Memory
import jnr.ffi.Pointer

/**
 * An epoll instance, plus an eventfd to wake its waiter early. Only one thread may [wait];
 * [arm], [remove] and [wake] are safe from any thread (epoll_ctl is).
 *
 * `struct epoll_event` is packed to 12 bytes on x86_64 and padded to 16 elsewhere.
 */
internal class Epoll(private val capacity: Int = 128) {
    private val fd: Int = checkErrno(libc.epoll_create1(Linux.EPOLL_CLOEXEC)) { "epoll_create1" }
    private val wakeFd: Int = checkErrno(libc.eventfd(0, Linux.EFD_CLOEXEC or Linux.EFD_NONBLOCK)) { "eventfd" }
    private val eventSize = if (System.getProperty("os.arch") in setOf("amd64", "x86_64")) 12L else 16L
    private val dataOffset = if (eventSize == 12L) 4L else 8L
    private val events: Pointer = Memory.allocateDirect(Native.runtime, eventSize * capacity, true)
    private val scratch: Pointer = Memory.allocateDirect(Native.runtime, 8L, true)
    private val wakeValue: Pointer = Memory.allocateDirect(Native.runtime, 8L, true).apply { putLong(0, 1L) }

    /** One `struct epoll_event` per calling thread, so re-arming a pipe allocates nothing. */
    private val scratchEvent = ThreadLocal.withInitial { Memory.allocateDirect(Native.runtime, 16L, true) }

    init {
        ctl(Linux.EPOLL_CTL_ADD, wakeFd, Linux.EPOLLIN, WAKE_TOKEN)
    }

    /** Adds ([add]) or re-arms [target] for [interest]; [token] is what [wait] reports for it. */
    fun arm(target: Int, interest: Int, token: Long, add: Boolean) {
        ctl(if (add) Linux.EPOLL_CTL_ADD else Linux.EPOLL_CTL_MOD, target, interest, token)
    }

    fun remove(target: Int) {
        libc.epoll_ctl(fd, Linux.EPOLL_CTL_DEL, target, null)
    }

    private fun ctl(op: Int, target: Int, interest: Int, token: Long) {
        val event = scratchEvent.get()
        event.putInt(0, interest)
        event.putLong(dataOffset, token)
        checkErrno(libc.epoll_ctl(fd, op, target, event)) { "epoll_ctl fd $target" }
    }

    /** Makes the current or next [wait] return at once. */
    fun wake() {
        libc.write(wakeFd, wakeValue, 8)
    }

    /**
     * Waits up to [timeoutMillis] (-1: without limit) and calls [onEvent] with the token and
     * event bits of everything ready. Wake-ups are consumed here and not reported.
     */
    fun wait(timeoutMillis: Int, onEvent: (token: Long, events: Int) -> Unit) {
        val count = libc.epoll_wait(fd, events, capacity, timeoutMillis)
        if (count < 0) {
            val errno = Native.errno()
            if (errno == Linux.EINTR) return
            throw errnoException("epoll_wait", errno)
        }
        for (i in 0 until count) {
            val base = i * eventSize
            val token = events.getLong(base + dataOffset)
            if (token == WAKE_TOKEN) libc.read(wakeFd, scratch, 8) else onEvent(token, events.getInt(base))
        }
    }

    private companion object {
        const val WAKE_TOKEN = -1L
    }
}
