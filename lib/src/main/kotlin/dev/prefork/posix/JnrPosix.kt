package dev.prefork.posix

import com.kenai.jffi.MemoryIO
import jnr.ffi.LibraryLoader
import jnr.ffi.LibraryOption
import jnr.ffi.Pointer
import jnr.ffi.Runtime
import jnr.ffi.annotations.In
import jnr.ffi.annotations.Out
import jnr.ffi.annotations.Pinned
import java.nio.ByteBuffer

/**
 * [Posix] through jnr-ffi, for JDK 17 to 21.
 *
 * jnr-posix is not used for these: its `posix_spawnp` drops errno, and it has no `wait4`,
 * `pidfd_open`, epoll or `posix_spawn_file_actions_addclosefrom_np`. Pointers cross as 64-bit
 * integers (the same in the C calling convention of every 64-bit Linux), memory is jffi's.
 */
internal class JnrPosix : Posix {
    @Suppress("FunctionName", "ktlint:standard:function-naming")
    interface LibC {
        // A Pointer last: jffi's invoker for six 64-bit integers passes a wrong sixth one (seen with jffi 1.3.14).
        fun posix_spawnp(pid: Long, file: Long, fileActions: Long, attr: Long, argv: Long, envp: Pointer): Int
        fun posix_spawn_file_actions_init(fileActions: Long): Int
        fun posix_spawn_file_actions_destroy(fileActions: Long): Int
        fun posix_spawn_file_actions_adddup2(fileActions: Long, fd: Int, newFd: Int): Int
        fun posix_spawn_file_actions_addopen(fileActions: Long, fd: Int, path: Long, flags: Int, mode: Int): Int
        fun posix_spawn_file_actions_addclose(fileActions: Long, fd: Int): Int
        fun posix_spawn_file_actions_addclosefrom_np(fileActions: Long, from: Int): Int
        fun posix_spawn_file_actions_addchdir_np(fileActions: Long, path: Long): Int
        fun posix_spawnattr_init(attr: Long): Int
        fun posix_spawnattr_destroy(attr: Long): Int
        fun posix_spawnattr_setflags(attr: Long, flags: Short): Int
        fun posix_spawnattr_setpgroup(attr: Long, processGroup: Int): Int
        fun posix_spawnattr_setsigmask(attr: Long, set: Long): Int
        fun posix_spawnattr_setsigdefault(attr: Long, set: Long): Int
        fun sigemptyset(set: Long): Int
        fun sigfillset(set: Long): Int

        fun pipe2(fds: Long, flags: Int): Int
        fun open(path: Long, flags: Int, mode: Int): Int
        fun close(fd: Int): Int
        fun fcntl(fd: Int, cmd: Int, arg: Int): Int
        fun ioctl(fd: Int, request: Long, value: Long): Int
        fun write(fd: Int, buffer: Long, count: Long): Long
        fun read(fd: Int, buffer: Long, count: Long): Long
        fun read(fd: Int, @Pinned @Out buffer: ByteBuffer, count: Long): Long
        fun write(fd: Int, @Pinned @In buffer: ByteBuffer, count: Long): Long

        fun kill(pid: Int, signal: Int): Int
        fun wait4(pid: Int, status: Long, options: Int, rusage: Long): Int
        fun syscall(number: Long, arg1: Long, arg2: Long): Long
        fun poll(fds: Long, count: Long, timeoutMillis: Int): Int

        fun epoll_create1(flags: Int): Int
        fun epoll_ctl(epfd: Int, op: Int, fd: Int, event: Long): Int
        fun epoll_wait(epfd: Int, events: Long, maxEvents: Int, timeoutMillis: Int): Int
        fun eventfd(initialValue: Int, flags: Int): Int
    }

    private val libc: LibC = LibraryLoader.create(LibC::class.java)
        .option(LibraryOption.SaveError, true)
        .load("c")
    private val runtime: Runtime = Runtime.getRuntime(libc)
    private val memory: MemoryIO = MemoryIO.getInstance()

    override val name: String get() = "jnr"

    override fun errno(): Int = runtime.lastError

    override fun allocate(bytes: Long): Long {
        val address = memory.allocateMemory(bytes, true)
        if (address == 0L) throw OutOfMemoryError("cannot allocate $bytes bytes of native memory")
        return address
    }

    override fun free(address: Long) = memory.freeMemory(address)
    override fun putShort(address: Long, value: Short) = memory.putShort(address, value)
    override fun putInt(address: Long, value: Int) = memory.putInt(address, value)
    override fun putLong(address: Long, value: Long) = memory.putLong(address, value)
    override fun getInt(address: Long): Int = memory.getInt(address)
    override fun getLong(address: Long): Long = memory.getLong(address)
    override fun putBytes(address: Long, bytes: ByteArray, offset: Int, length: Int) = memory.putByteArray(address, bytes, offset, length)

    override fun posix_spawnp(pid: Long, file: Long, fileActions: Long, attr: Long, argv: Long, envp: Long): Int =
        libc.posix_spawnp(pid, file, fileActions, attr, argv, runtime.memoryManager.newPointer(envp))
    override fun posix_spawn_file_actions_init(fileActions: Long): Int = libc.posix_spawn_file_actions_init(fileActions)
    override fun posix_spawn_file_actions_destroy(fileActions: Long): Int = libc.posix_spawn_file_actions_destroy(fileActions)
    override fun posix_spawn_file_actions_adddup2(fileActions: Long, fd: Int, newFd: Int): Int =
        libc.posix_spawn_file_actions_adddup2(fileActions, fd, newFd)
    override fun posix_spawn_file_actions_addopen(fileActions: Long, fd: Int, path: Long, flags: Int, mode: Int): Int =
        libc.posix_spawn_file_actions_addopen(fileActions, fd, path, flags, mode)
    override fun posix_spawn_file_actions_addclose(fileActions: Long, fd: Int): Int = libc.posix_spawn_file_actions_addclose(fileActions, fd)
    override fun posix_spawn_file_actions_addclosefrom_np(fileActions: Long, from: Int): Int =
        libc.posix_spawn_file_actions_addclosefrom_np(fileActions, from)
    override fun posix_spawn_file_actions_addchdir_np(fileActions: Long, path: Long): Int =
        libc.posix_spawn_file_actions_addchdir_np(fileActions, path)
    override fun posix_spawnattr_init(attr: Long): Int = libc.posix_spawnattr_init(attr)
    override fun posix_spawnattr_destroy(attr: Long): Int = libc.posix_spawnattr_destroy(attr)
    override fun posix_spawnattr_setflags(attr: Long, flags: Short): Int = libc.posix_spawnattr_setflags(attr, flags)
    override fun posix_spawnattr_setpgroup(attr: Long, processGroup: Int): Int = libc.posix_spawnattr_setpgroup(attr, processGroup)
    override fun posix_spawnattr_setsigmask(attr: Long, set: Long): Int = libc.posix_spawnattr_setsigmask(attr, set)
    override fun posix_spawnattr_setsigdefault(attr: Long, set: Long): Int = libc.posix_spawnattr_setsigdefault(attr, set)
    override fun sigemptyset(set: Long): Int = libc.sigemptyset(set)
    override fun sigfillset(set: Long): Int = libc.sigfillset(set)

    override fun pipe2(fds: Long, flags: Int): Int = libc.pipe2(fds, flags)
    override fun open(path: Long, flags: Int, mode: Int): Int = libc.open(path, flags, mode)
    override fun close(fd: Int): Int = libc.close(fd)
    override fun fcntl(fd: Int, cmd: Int, arg: Int): Int = libc.fcntl(fd, cmd, arg)
    override fun ioctlInt(fd: Int, request: Long, value: Long): Int = libc.ioctl(fd, request, value)
    override fun write(fd: Int, buffer: Long, count: Long): Long = libc.write(fd, buffer, count)
    override fun read(fd: Int, buffer: Long, count: Long): Long = libc.read(fd, buffer, count)
    override fun readArray(fd: Int, bytes: ByteArray, offset: Int, length: Int): Long =
        libc.read(fd, ByteBuffer.wrap(bytes, offset, length), length.toLong())
    override fun writeArray(fd: Int, bytes: ByteArray, offset: Int, length: Int): Long =
        libc.write(fd, ByteBuffer.wrap(bytes, offset, length), length.toLong())

    override fun kill(pid: Int, signal: Int): Int = libc.kill(pid, signal)
    override fun wait4(pid: Int, status: Long, options: Int, rusage: Long): Int = libc.wait4(pid, status, options, rusage)
    override fun syscall(number: Long, arg1: Long, arg2: Long): Long = libc.syscall(number, arg1, arg2)
    override fun poll(fds: Long, count: Long, timeoutMillis: Int): Int = libc.poll(fds, count, timeoutMillis)

    override fun epoll_create1(flags: Int): Int = libc.epoll_create1(flags)
    override fun epoll_ctl(epfd: Int, op: Int, fd: Int, event: Long): Int = libc.epoll_ctl(epfd, op, fd, event)
    override fun epoll_wait(epfd: Int, events: Long, maxEvents: Int, timeoutMillis: Int): Int =
        libc.epoll_wait(epfd, events, maxEvents, timeoutMillis)
    override fun eventfd(initialValue: Int, flags: Int): Int = libc.eventfd(initialValue, flags)
}
