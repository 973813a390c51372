package dev.prefork.posix

import jnr.ffi.LibraryLoader
import jnr.ffi.LibraryOption
import jnr.ffi.Pointer
import jnr.ffi.Runtime
import jnr.ffi.annotations.In
import jnr.ffi.annotations.Out
import jnr.ffi.byref.IntByReference

/**
 * The slice of glibc prefork calls, bound through jnr-ffi.
 *
 * jnr-posix is not used for these: its `posix_spawnp` drops errno, and it has no
 * `wait4`, `pidfd_open`, epoll or `posix_spawn_file_actions_addclosefrom_np`.
 * Every function here reports failure the C way; the wrappers in this package
 * turn that into exceptions that name the call and the errno.
 */
@Suppress("FunctionName", "ktlint:standard:function-naming")
internal interface LibC {
    fun posix_spawnp(
        @Out pid: IntByReference,
        @In file: String,
        fileActions: Pointer,
        attr: Pointer,
        argv: Pointer,
        envp: Pointer,
    ): Int

    fun posix_spawn_file_actions_init(fileActions: Pointer): Int
    fun posix_spawn_file_actions_destroy(fileActions: Pointer): Int
    fun posix_spawn_file_actions_adddup2(fileActions: Pointer, fd: Int, newFd: Int): Int
    fun posix_spawn_file_actions_addopen(fileActions: Pointer, fd: Int, @In path: String, flags: Int, mode: Int): Int
    fun posix_spawn_file_actions_addclose(fileActions: Pointer, fd: Int): Int
    fun posix_spawn_file_actions_addclosefrom_np(fileActions: Pointer, from: Int): Int
    fun posix_spawn_file_actions_addchdir_np(fileActions: Pointer, @In path: String): Int

    fun posix_spawnattr_init(attr: Pointer): Int
    fun posix_spawnattr_destroy(attr: Pointer): Int
    fun posix_spawnattr_setflags(attr: Pointer, flags: Short): Int
    fun posix_spawnattr_setpgroup(attr: Pointer, processGroup: Int): Int
    fun posix_spawnattr_setsigmask(attr: Pointer, set: Pointer): Int
    fun posix_spawnattr_setsigdefault(attr: Pointer, set: Pointer): Int
    fun sigemptyset(set: Pointer): Int
    fun sigfillset(set: Pointer): Int

    fun pipe2(@Out fds: IntArray, flags: Int): Int
    fun open(@In path: String, flags: Int, mode: Int): Int
    fun close(fd: Int): Int
    fun fcntl(fd: Int, cmd: Int, arg: Int): Int
    fun write(fd: Int, @In buffer: Pointer, count: Long): Long
    fun read(fd: Int, @Out buffer: Pointer, count: Long): Long

    fun kill(pid: Int, signal: Int): Int
    fun wait4(pid: Int, @Out status: IntByReference, options: Int, rusage: Pointer): Int
    fun syscall(number: Long, arg1: Long, arg2: Long): Long

    fun poll(fds: Pointer, count: Long, timeoutMillis: Int): Int

    fun epoll_create1(flags: Int): Int
    fun epoll_ctl(epfd: Int, op: Int, fd: Int, event: Pointer?): Int
    fun epoll_wait(epfd: Int, events: Pointer, maxEvents: Int, timeoutMillis: Int): Int
    fun eventfd(initialValue: Int, flags: Int): Int
}

/** The loaded C library; the first touch costs the jnr start-up (about half a second). */
internal object Native {
    val libc: LibC = LibraryLoader.create(LibC::class.java)
        .option(LibraryOption.SaveError, true)
        .load("c")

    val runtime: Runtime = Runtime.getRuntime(libc)

    /** errno of the last failed call on this thread; meaningful only right after a failure. */
    fun errno(): Int = runtime.lastError
}

/** Linux constants; x86_64 and aarch64 agree on every value used here. */
internal object Linux {
    const val O_RDONLY = 0
    const val O_WRONLY = 1
    const val O_RDWR = 2
    const val O_CREAT = 0x40
    const val O_TRUNC = 0x200
    const val O_APPEND = 0x400
    const val O_NONBLOCK = 0x800
    const val O_CLOEXEC = 0x80000

    const val F_GETFL = 3
    const val F_SETFL = 4
    const val F_DUPFD_CLOEXEC = 1030
    const val F_SETPIPE_SZ = 1031

    const val POSIX_SPAWN_SETPGROUP: Short = 0x02
    const val POSIX_SPAWN_SETSIGDEF: Short = 0x04
    const val POSIX_SPAWN_SETSIGMASK: Short = 0x08

    const val WNOHANG = 1

    const val EPERM = 1
    const val EINTR = 4
    const val EAGAIN = 11
    const val ENOSYS = 38
    const val ESRCH = 3
    const val EPIPE = 32

    const val SYS_PIDFD_OPEN = 434L

    const val EPOLL_CLOEXEC = 0x80000
    const val EPOLL_CTL_ADD = 1
    const val EPOLL_CTL_DEL = 2
    const val EPOLL_CTL_MOD = 3
    const val POLLIN: Short = 0x001

    const val EPOLLIN = 0x001
    const val EPOLLOUT = 0x004
    const val EPOLLONESHOT = 1 shl 30

    const val EFD_CLOEXEC = 0x80000
    const val EFD_NONBLOCK = 0x800

    const val SIGKILL = 9
    const val SIGTERM = 15
}
