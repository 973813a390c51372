package dev.prefork.reaper

import dev.prefork.log.error
import dev.prefork.log.logger
import dev.prefork.posix.Epoll
import dev.prefork.posix.Fds
import dev.prefork.posix.Linux
import dev.prefork.posix.Pidfd
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong
import java.util.concurrent.atomic.AtomicReference
import kotlin.coroutines.resume
import kotlinx.coroutines.CancellableContinuation
import kotlinx.coroutines.suspendCancellableCoroutine

private val logger = logger("dev.prefork.reaper.Reactor")

/** Something the reactor reaps: [tryReap] runs `wait4(pid, WNOHANG)` and says whether it got the status. */
internal fun interface Reapable {
    fun tryReap(): Boolean
}

/**
 * The one thread that watches every child and every pipe of the JVM, an epoll loop (but for
 * a child a blocking waiter watches itself for a while: [ExitWatch.awaitHere]).
 *
 * Child exits are watched through pidfds (Linux 5.3+), so a thousand live children cost no
 * extra thread. Where `pidfd_open` is missing ([usePidfd] false, or ENOSYS/EPERM) children are
 * polled with `wait4(pid, WNOHANG)` every [POLL_MILLIS] instead; never `wait4(-1)`.
 *
 * Pipe readiness is one-shot: a coroutine asks [Readiness.await], the reactor resumes it once,
 * and the coroutine itself does the read or write (prefork's pipe pumps are unconfined, and
 * make a short non-blocking read or write right on this thread). Handlers run on the reactor
 * thread and must only resume, reap, complete or make such a call; user code never runs here.
 *
 * A blocking waiter takes its child's pidfd out of the epoll set while it waits
 * ([ExitWatch.awaitHere]): one wake-up per exit, as a `waitpid` in C has, instead of the
 * reactor's and then the waiter's.
 */
internal class Reactor(private val usePidfd: Boolean) {
    private val epoll = Epoll()
    private val tokens = AtomicLong()
    private val handlers = ConcurrentHashMap<Long, (Int) -> Unit>()
    private val polled = ConcurrentHashMap.newKeySet<Reapable>()

    /** The pids watched and not reaped yet: prefork's own children, which nothing else may reap. */
    private val children = ConcurrentHashMap.newKeySet<Int>()

    /** Whether [pid] is a child prefork watches (and will reap itself). */
    fun isWatching(pid: Int): Boolean = pid in children

    init {
        Thread(::loop, "prefork-reactor").apply {
            isDaemon = true
            start()
        }
    }

    /**
     * Calls [watched].tryReap() on the reactor thread once [pid] has exited, until it returns
     * true. The [ExitWatch] lets a blocking waiter wait for the exit on its own thread instead;
     * null where exits are polled (no pidfd).
     */
    fun watchExit(pid: Int, watched: Reapable): ExitWatch? {
        children += pid
        val target = Reapable { watched.tryReap().also { reaped -> if (reaped) children -= pid } }
        val pidfd = try {
            if (usePidfd) Pidfd.open(pid) else null
        } catch (e: Exception) {
            children -= pid
            throw e
        }
        if (pidfd == null) {
            polled += target
            epoll.wake()
            return null
        }
        val watch = ExitWatch(pidfd, target)
        try {
            watch.arm()
        } catch (e: Exception) {
            watch.abandon()
            children -= pid
            throw e
        }
        return watch
    }

    /**
     * One child's pidfd, watched by the reactor's epoll or, for a while, by a thread in
     * [awaitHere]: never by both, so an exit wakes one thread, the one that waits for it.
     */
    inner class ExitWatch(private val pidfd: Int, private val target: Reapable) {
        private val token = tokens.incrementAndGet()

        /** [IN_EPOLL], [HERE] (a thread waits in [awaitHere]), [REAPING] (the reactor's handler runs) or [DONE] (the pidfd is closed): guarded by this. */
        private var state = IN_EPOLL

        internal fun arm() {
            handlers[token] = { onExit() }
            epoll.arm(pidfd, Linux.EPOLLIN, token, add = true)
        }

        internal fun abandon() {
            handlers.remove(token)
            Fds.closeQuietly(pidfd)
        }

        /** The reactor's handler; the reap runs outside the lock, which a waiter arriving meanwhile must not wait for. */
        private fun onExit() {
            synchronized(this) {
                if (state != IN_EPOLL) return // an event epoll reported just before a waiter took the pidfd
                state = REAPING
            }
            var reaped = false
            try {
                reaped = target.tryReap()
            } finally {
                // Also when a completion handler threw: a watch left REAPING would keep its readable pidfd in epoll for good.
                synchronized(this) {
                    if (reaped) finish() else state = IN_EPOLL
                }
            }
        }

        /**
         * Waits on the calling thread, up to [timeoutMillis], for the child's exit, and reaps it
         * here: the exit wakes this thread directly, not the reactor's, which would then have
         * to wake this one. Returns at once if another thread holds the watch or the pidfd is
         * closed; a child still running afterwards is the reactor's to watch again.
         */
        fun awaitHere(timeoutMillis: Int) {
            synchronized(this) {
                if (state != IN_EPOLL) return
                state = HERE
            }
            var reaped = false
            try {
                epoll.remove(pidfd)
                try {
                    Fds.pollReadable(pidfd, timeoutMillis)
                } catch (e: java.io.IOException) {
                    // Not to be had for a pidfd (EFAULT, ENOMEM); the waiter waits on the reactor instead.
                    logger.error(e) { "prefork reactor: poll of pidfd $pidfd failed; waiting through the reactor" }
                }
                reaped = target.tryReap()
            } finally {
                synchronized(this) {
                    if (reaped) finish() else rearm()
                }
            }
        }

        private fun rearm() {
            try {
                epoll.arm(pidfd, Linux.EPOLLIN, token, add = true)
                state = IN_EPOLL
            } catch (e: Throwable) {
                // No epoll entry to be had (ENOMEM, say): the child is polled, as without pidfds.
                logger.error(e) { "prefork reactor: pidfd $pidfd not watched again; polling its child instead" }
                finish()
                polled += target
                epoll.wake()
            }
        }

        /** Under the lock, by the thread that holds the watch: REAPING, the reactor (the pidfd in epoll), or HERE, a waiter (taken out). */
        private fun finish() {
            if (state == REAPING) epoll.remove(pidfd)
            state = DONE
            handlers.remove(token)
            Fds.closeQuietly(pidfd)
        }
    }

    /** Readiness of one fd; [close] before closing the fd itself. */
    fun readiness(fd: Int): Readiness = Readiness(fd)

    inner class Readiness(private val fd: Int) : AutoCloseable {
        private val token = tokens.incrementAndGet()
        private val waiter = AtomicReference<CancellableContinuation<Int>?>()
        private var added = false

        /** Set by [wake]: every wait from then on returns at once. */
        @Volatile private var woken = false

        init {
            handlers[token] = { events -> waiter.getAndSet(null)?.resume(events) }
        }

        /**
         * Suspends until [fd] is ready for [interest] (EPOLLIN or EPOLLOUT), or has hung up;
         * returns the events epoll reported ([Linux.EPOLLHUP] among them once every writer closed its end),
         * or 0 once [wake] was called.
         */
        suspend fun await(interest: Int): Int = suspendCancellableCoroutine { cont ->
            waiter.set(cont)
            cont.invokeOnCancellation { waiter.compareAndSet(cont, null) }
            // A wake that came before the waiter was set found nobody to resume: it is seen here instead.
            if (woken) {
                if (waiter.compareAndSet(cont, null)) cont.resume(0)
                return@suspendCancellableCoroutine
            }
            try {
                epoll.arm(fd, interest or Linux.EPOLLONESHOT, token, add = !added)
            } catch (t: Throwable) {
                waiter.compareAndSet(cont, null) // no event will come: nothing may resume this wait later
                throw t
            }
            added = true
        }

        /** Ends the current wait, and every later one, at once: the fd is about to go (another thread closes it). */
        fun wake() {
            woken = true
            waiter.getAndSet(null)?.resume(0)
        }

        override fun close() {
            handlers.remove(token)
            if (added) epoll.remove(fd)
        }
    }

    private fun loop() {
        while (true) {
            try {
                epoll.wait(if (polled.isEmpty()) -1 else POLL_MILLIS) { token, events ->
                    handlers[token]?.invoke(events)
                }
                if (polled.isNotEmpty()) polled.removeIf { it.tryReap() }
            } catch (t: Throwable) {
                // The reactor must outlive any one bad handler; losing it would hang every waiter.
                logger.error(t) { "prefork reactor: handler failed" }
            }
        }
    }

    companion object {
        const val POLL_MILLIS = 10

        private const val IN_EPOLL = 0
        private const val HERE = 1
        private const val REAPING = 2
        private const val DONE = 3

        /** The JVM's reactor; `-Dprefork.pidfd=false` forces the polling fallback. */
        val shared: Reactor by lazy { Reactor(usePidfd = System.getProperty("prefork.pidfd") != "false") }
    }
}
