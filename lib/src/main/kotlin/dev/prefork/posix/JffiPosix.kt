package dev.prefork.posix

import com.kenai.jffi.CallContext
import com.kenai.jffi.CallingConvention
import com.kenai.jffi.Invoker
import com.kenai.jffi.LastError
import com.kenai.jffi.Library
import com.kenai.jffi.MemoryIO
import com.kenai.jffi.ObjectParameterInfo
import com.kenai.jffi.ObjectParameterStrategy
import com.kenai.jffi.ObjectParameterType
import com.kenai.jffi.Type

/**
 * [Posix] through jffi, the JNI layer of the jnr project, for JDK 17 to 21.
 *
 * jffi's own calls, not jnr-ffi's interface binding: jnr-ffi generates a class of bytecode and
 * native stubs for a whole interface when it is loaded, reading its annotations on the way,
 * which made the first spawn in a fresh JVM cost about 0.4 s; this binds a C function by
 * looking up its symbol and calls it through one of jffi's generic invokers.
 *
 * Every function is called as one taking 64-bit integers and returning one, with its own
 * number of arguments: on x86_64 and AArch64 Linux, the only platforms prefork runs on, integer
 * and pointer arguments travel in the same 64-bit registers, a callee reads an `int` from the
 * low half of one, and an `int` result is the low half of the return register, which the
 * Kotlin side truncates to. The variadic `open`, `fcntl`, `ioctl` and `syscall` take their
 * integer arguments the same way. jffi saves errno right after each call, per thread.
 */
@Suppress("FunctionName", "ktlint:standard:function-naming")
internal class JffiPosix : Posix {
    private val libc: Library = Library.getCachedInstance(LIBC, Library.LAZY or Library.LOCAL)
        ?: throw UnsatisfiedLinkError("cannot open $LIBC: ${Library.getLastError()}")
    private val invoker: Invoker = Invoker.getInstance()
    private val memory: MemoryIO = MemoryIO.getInstance()
    private val lastError: LastError = LastError.getInstance()

    /** The call shape of each arity (64-bit integers in and out, errno saved), shared by the functions of that arity. */
    private val contexts = Array(MAX_ARITY + 1) { arity ->
        CallContext.getCallContext(Type.SINT64, Array(arity) { Type.SINT64 }, CallingConvention.DEFAULT, true)
    }

    /** A C function of this library, its symbol looked up at the first call. */
    private inner class Function(private val symbol: String, arity: Int) {
        val context: CallContext = contexts[arity]

        /** 0 until looked up; [MISSING] where the C library lacks the symbol. */
        @Volatile private var resolved = 0L

        val address: Long get() {
            var found = resolved
            if (found == 0L) {
                found = libc.getSymbolAddress(symbol).let { if (it == 0L) MISSING else it }
                resolved = found
            }
            if (found == MISSING) throw UnsatisfiedLinkError("$symbol is not in $LIBC")
            return found
        }

        fun call(a: Long): Long = invoker.invokeN1(context, address, a)
        fun call(a: Long, b: Long): Long = invoker.invokeN2(context, address, a, b)
        fun call(a: Long, b: Long, c: Long): Long = invoker.invokeN3(context, address, a, b, c)
        fun call(a: Long, b: Long, c: Long, d: Long): Long = invoker.invokeN4(context, address, a, b, c, d)
        fun call(a: Long, b: Long, c: Long, d: Long, e: Long): Long = invoker.invokeN5(context, address, a, b, c, d, e)
        fun call(a: Long, b: Long, c: Long, d: Long, e: Long, f: Long): Long = invoker.invokeN6(context, address, a, b, c, d, e, f)

        /** `(int fd, void *buffer, size_t count)` with the buffer a slice of a Java array, pinned for the call (no copy). */
        fun callWithArray(fd: Int, bytes: ByteArray, offset: Int, length: Int, info: ObjectParameterInfo): Long =
            invoker.invokeN3O1(context, address, fd.toLong(), 0L, length.toLong(), bytes, ArraySlice(offset, length), info)
    }

    /** The slice of a byte array a read or write works on. */
    private class ArraySlice(private val offset: Int, private val length: Int) : ObjectParameterStrategy<ByteArray>(HEAP, BYTE_ARRAY) {
        override fun address(array: ByteArray): Long = 0L
        override fun `object`(array: ByteArray): Any = array
        override fun offset(array: ByteArray): Int = offset
        override fun length(array: ByteArray): Int = length
    }

    private val spawnp = Function("posix_spawnp", 6)
    private val fileActionsInit = Function("posix_spawn_file_actions_init", 1)
    private val fileActionsDestroy = Function("posix_spawn_file_actions_destroy", 1)
    private val addDup2 = Function("posix_spawn_file_actions_adddup2", 3)
    private val addOpen = Function("posix_spawn_file_actions_addopen", 5)
    private val addClose = Function("posix_spawn_file_actions_addclose", 2)
    private val addCloseFrom = Function("posix_spawn_file_actions_addclosefrom_np", 2)
    private val addChdir = Function("posix_spawn_file_actions_addchdir_np", 2)
    private val attrInit = Function("posix_spawnattr_init", 1)
    private val attrDestroy = Function("posix_spawnattr_destroy", 1)
    private val attrSetFlags = Function("posix_spawnattr_setflags", 2)
    private val attrSetPgroup = Function("posix_spawnattr_setpgroup", 2)
    private val attrSetSigmask = Function("posix_spawnattr_setsigmask", 2)
    private val attrSetSigdefault = Function("posix_spawnattr_setsigdefault", 2)
    private val sigEmptySet = Function("sigemptyset", 1)
    private val sigFillSet = Function("sigfillset", 1)

    private val pipe2 = Function("pipe2", 2)
    private val open = Function("open", 3)
    private val close = Function("close", 1)
    private val fcntl = Function("fcntl", 3)
    private val ioctl = Function("ioctl", 3)
    private val write = Function("write", 3)
    private val read = Function("read", 3)

    private val kill = Function("kill", 2)
    private val wait4 = Function("wait4", 4)
    private val syscall = Function("syscall", 3)
    private val poll = Function("poll", 3)
    private val getAffinity = Function("sched_getaffinity", 3)
    private val setAffinity = Function("sched_setaffinity", 3)

    private val epollCreate1 = Function("epoll_create1", 1)
    private val epollCtl = Function("epoll_ctl", 4)
    private val epollWait = Function("epoll_wait", 4)
    private val eventfd = Function("eventfd", 2)
    private val socket = Function("socket", 3)
    private val sendto = Function("sendto", 6)

    override val name: String get() = "jffi"

    override fun errno(): Int = lastError.get()

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
        spawnp.call(pid, file, fileActions, attr, argv, envp).toInt()
    override fun posix_spawn_file_actions_init(fileActions: Long): Int = fileActionsInit.call(fileActions).toInt()
    override fun posix_spawn_file_actions_destroy(fileActions: Long): Int = fileActionsDestroy.call(fileActions).toInt()
    override fun posix_spawn_file_actions_adddup2(fileActions: Long, fd: Int, newFd: Int): Int =
        addDup2.call(fileActions, fd.toLong(), newFd.toLong()).toInt()
    override fun posix_spawn_file_actions_addopen(fileActions: Long, fd: Int, path: Long, flags: Int, mode: Int): Int =
        addOpen.call(fileActions, fd.toLong(), path, flags.toLong(), mode.toLong()).toInt()
    override fun posix_spawn_file_actions_addclose(fileActions: Long, fd: Int): Int = addClose.call(fileActions, fd.toLong()).toInt()
    override fun posix_spawn_file_actions_addclosefrom_np(fileActions: Long, from: Int): Int =
        addCloseFrom.call(fileActions, from.toLong()).toInt()
    override fun posix_spawn_file_actions_addchdir_np(fileActions: Long, path: Long): Int = addChdir.call(fileActions, path).toInt()
    override fun posix_spawnattr_init(attr: Long): Int = attrInit.call(attr).toInt()
    override fun posix_spawnattr_destroy(attr: Long): Int = attrDestroy.call(attr).toInt()
    override fun posix_spawnattr_setflags(attr: Long, flags: Short): Int = attrSetFlags.call(attr, flags.toLong()).toInt()
    override fun posix_spawnattr_setpgroup(attr: Long, processGroup: Int): Int = attrSetPgroup.call(attr, processGroup.toLong()).toInt()
    override fun posix_spawnattr_setsigmask(attr: Long, set: Long): Int = attrSetSigmask.call(attr, set).toInt()
    override fun posix_spawnattr_setsigdefault(attr: Long, set: Long): Int = attrSetSigdefault.call(attr, set).toInt()
    override fun sigemptyset(set: Long): Int = sigEmptySet.call(set).toInt()
    override fun sigfillset(set: Long): Int = sigFillSet.call(set).toInt()

    override fun pipe2(fds: Long, flags: Int): Int = pipe2.call(fds, flags.toLong()).toInt()
    override fun open(path: Long, flags: Int, mode: Int): Int = open.call(path, flags.toLong(), mode.toLong()).toInt()
    override fun close(fd: Int): Int = close.call(fd.toLong()).toInt()
    override fun fcntl(fd: Int, cmd: Int, arg: Int): Int = fcntl.call(fd.toLong(), cmd.toLong(), arg.toLong()).toInt()
    override fun ioctlInt(fd: Int, request: Long, value: Long): Int = ioctl.call(fd.toLong(), request, value).toInt()
    override fun write(fd: Int, buffer: Long, count: Long): Long = write.call(fd.toLong(), buffer, count)
    override fun read(fd: Int, buffer: Long, count: Long): Long = read.call(fd.toLong(), buffer, count)
    override fun readArray(fd: Int, bytes: ByteArray, offset: Int, length: Int): Long =
        read.callWithArray(fd, bytes, offset, length, READ_INTO)
    override fun writeArray(fd: Int, bytes: ByteArray, offset: Int, length: Int): Long =
        write.callWithArray(fd, bytes, offset, length, WRITE_FROM)

    override fun kill(pid: Int, signal: Int): Int = kill.call(pid.toLong(), signal.toLong()).toInt()
    override fun wait4(pid: Int, status: Long, options: Int, rusage: Long): Int =
        wait4.call(pid.toLong(), status, options.toLong(), rusage).toInt()
    override fun syscall(number: Long, arg1: Long, arg2: Long): Long = syscall.call(number, arg1, arg2)
    override fun poll(fds: Long, count: Long, timeoutMillis: Int): Int = poll.call(fds, count, timeoutMillis.toLong()).toInt()
    override fun sched_getaffinity(tid: Int, size: Long, mask: Long): Int = getAffinity.call(tid.toLong(), size, mask).toInt()
    override fun sched_setaffinity(tid: Int, size: Long, mask: Long): Int = setAffinity.call(tid.toLong(), size, mask).toInt()

    override fun epoll_create1(flags: Int): Int = epollCreate1.call(flags.toLong()).toInt()
    override fun epoll_ctl(epfd: Int, op: Int, fd: Int, event: Long): Int =
        epollCtl.call(epfd.toLong(), op.toLong(), fd.toLong(), event).toInt()
    override fun epoll_wait(epfd: Int, events: Long, maxEvents: Int, timeoutMillis: Int): Int =
        epollWait.call(epfd.toLong(), events, maxEvents.toLong(), timeoutMillis.toLong()).toInt()
    override fun eventfd(initialValue: Int, flags: Int): Int = eventfd.call(initialValue.toLong(), flags.toLong()).toInt()

    override fun socket(domain: Int, type: Int, protocol: Int): Int = socket.call(domain.toLong(), type.toLong(), protocol.toLong()).toInt()
    override fun sendto(fd: Int, buffer: Long, length: Long, flags: Int, address: Long, addressLength: Int): Long =
        sendto.call(fd.toLong(), buffer, length, flags.toLong(), address, addressLength.toLong())

    private companion object {
        const val LIBC = "libc.so.6"
        const val MAX_ARITY = 6
        const val MISSING = -1L
        val BYTE_ARRAY: ObjectParameterType = ObjectParameterType.create(ObjectParameterType.ARRAY, ObjectParameterType.BYTE)

        /** The buffer is the second argument; the kernel writes it (read) or reads it (write), the GC leaves it in place. */
        val READ_INTO: ObjectParameterInfo =
            ObjectParameterInfo.create(1, ObjectParameterInfo.ARRAY, ObjectParameterInfo.BYTE, ObjectParameterInfo.OUT or ObjectParameterInfo.PINNED)
        val WRITE_FROM: ObjectParameterInfo =
            ObjectParameterInfo.create(1, ObjectParameterInfo.ARRAY, ObjectParameterInfo.BYTE, ObjectParameterInfo.IN or ObjectParameterInfo.PINNED)
    }
}
