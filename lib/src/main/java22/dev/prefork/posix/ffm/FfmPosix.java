package dev.prefork.posix.ffm;

import dev.prefork.posix.Posix;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED;

/**
 * {@link Posix} through the JDK's foreign function API (final in JDK 22), for JDK 22 and later:
 * no JNI library of its own, no {@code sun.misc.Unsafe}, calls the JIT compiles like any other.
 *
 * <p>Binding is what a cold JVM pays for, about 10-20 ms for each distinct call shape (the
 * JDK generates a stub and its method handles per function descriptor, and shares them between
 * functions of one descriptor). So every C function is bound with one of three shapes: six
 * 64-bit integer arguments returning one, four of them for the variadic {@code open},
 * {@code fcntl} and {@code ioctl}, both capturing errno, and the critical read and write of a
 * Java array. A spawn without pipes needs the first alone; pipes add the other two. On
 * x86_64 and AArch64 Linux, the only platforms prefork runs on, integer and pointer arguments
 * travel in the same 64-bit registers, a callee ignores registers past its own parameters and
 * reads an {@code int} from the low half of one, and an {@code int} result is the low half of
 * the return register, which the Java side truncates to. The arguments of a variadic call
 * travel as those of any other call there; only the count of vector registers (none) must be
 * set, which the variadic shape does.
 *
 * <p>Each function is bound the first time it is called, by a holder class of its own (the JVM
 * initialises a class on first use, and its {@code static final} handle is then a constant to
 * the JIT). errno is captured right after the call, into a buffer of the calling thread.
 *
 * <p>Reads and writes into Java arrays are "critical" calls: the kernel copies straight from or
 * into the array, which the GC leaves in place meanwhile. They are only made on non-blocking
 * descriptors, because a critical call holds up the JVM's safepoints for as long as it runs.
 *
 * <p>(Over 300 lines: one method, and mostly one holder class, for each of the 46 functions of
 * {@link Posix}, which must stay side by side with that interface.)
 */
public final class FfmPosix implements Posix {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final long ERRNO = CALL_STATE.byteOffset(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    /** All of the address space: the memory of {@link #allocate}, addressed by number. */
    private static final MemorySegment MEMORY = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);

    private static final ThreadLocal<MemorySegment> CALL_STATES = ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CALL_STATE));

    private static MemorySegment errnoState() {
        return CALL_STATES.get();
    }

    private static final FunctionDescriptor CALL =
        FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG);
    private static final FunctionDescriptor VARIADIC_CALL = FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG);
    private static final FunctionDescriptor ARRAY_CALL = FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG);

    private static MethodHandle bind(String function) {
        return bind(function, CALL, CAPTURE_ERRNO);
    }

    private static MethodHandle bindVariadic(String function) {
        return bind(function, VARIADIC_CALL, CAPTURE_ERRNO, Linker.Option.firstVariadicArg(1));
    }

    /**
     * A handle for {@code function}; where the C library lacks it (glibc before 2.34 has no
     * {@code posix_spawn_file_actions_addclosefrom_np}, before 2.29 no {@code addchdir_np}), one of
     * the same type that throws {@link UnsatisfiedLinkError} at each call, as the jffi binding does, rather than
     * a holder class that failed to initialise.
     */
    private static MethodHandle bind(String function, FunctionDescriptor descriptor, Linker.Option... options) {
        MethodHandle bound = LINKER.defaultLookup().find(function)
            .map(address -> LINKER.downcallHandle(address, descriptor, options))
            .orElse(null);
        if (bound != null) return bound;
        MethodType type = descriptor.toMethodType().insertParameterTypes(0, MemorySegment.class);
        MethodHandle thrower = MethodHandles.throwException(type.returnType(), UnsatisfiedLinkError.class);
        MethodHandle missing = MethodHandles.filterReturnValue(MethodHandles.constant(String.class, function), Missing.MAKE);
        return MethodHandles.dropArguments(MethodHandles.foldArguments(thrower, missing), 0, type.parameterList());
    }

    /** Looked up only when a function is missing: a lookup costs a cold JVM its start-up time. */
    private static final class Missing {
        static final MethodHandle MAKE;

        static {
            try {
                MAKE = MethodHandles.lookup().findStatic(FfmPosix.class, "missing", MethodType.methodType(UnsatisfiedLinkError.class, String.class));
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }
    }

    private static UnsatisfiedLinkError missing(String function) {
        return new UnsatisfiedLinkError("the C library has no " + function);
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException e) throw e;
        if (t instanceof Error e) throw e;
        throw new IllegalStateException(t);
    }

    /**
     * Makes the restricted calls the binding needs at once (the all-memory segment, one downcall
     * handle), so a JVM that denies them to prefork's module fails here, where prefork falls back
     * to jffi, and never in the middle of a spawn.
     */
    public FfmPosix() {
        free(0L);
    }

    @Override
    public String getName() {
        return "ffm";
    }

    @Override
    public int errno() {
        return errnoState().get(JAVA_INT, ERRNO);
    }

    @Override
    public long allocate(long bytes) {
        long address;
        try {
            address = (long) H_calloc.H.invokeExact(errnoState(), 1L, bytes, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (address == 0L) throw new OutOfMemoryError("cannot allocate " + bytes + " bytes of native memory");
        return address;
    }

    @Override
    public void free(long address) {
        try {
            long ignored = (long) H_free.H.invokeExact(errnoState(), address, 0L, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public void putShort(long address, short value) {
        MEMORY.set(JAVA_SHORT_UNALIGNED, address, value);
    }

    @Override
    public void putInt(long address, int value) {
        MEMORY.set(JAVA_INT_UNALIGNED, address, value);
    }

    @Override
    public void putLong(long address, long value) {
        MEMORY.set(JAVA_LONG_UNALIGNED, address, value);
    }

    @Override
    public int getInt(long address) {
        return MEMORY.get(JAVA_INT_UNALIGNED, address);
    }

    @Override
    public long getLong(long address) {
        return MEMORY.get(JAVA_LONG_UNALIGNED, address);
    }

    @Override
    public void putBytes(long address, byte[] bytes, int offset, int length) {
        MemorySegment.copy(bytes, offset, MEMORY, JAVA_BYTE, address, length);
    }

    @Override
    public long readArray(int fd, byte[] bytes, int offset, int length) {
        try {
            return (long) H_readArray.H.invokeExact(errnoState(), fd, MemorySegment.ofArray(bytes).asSlice(offset, length), (long) length);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public long writeArray(int fd, byte[] bytes, int offset, int length) {
        try {
            return (long) H_writeArray.H.invokeExact(errnoState(), fd, MemorySegment.ofArray(bytes).asSlice(offset, length), (long) length);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int posix_spawnp(long pid, long file, long fileActions, long attr, long argv, long envp) {
        try {
            return (int) (long) H_posix_spawnp.H.invokeExact(errnoState(), pid, file, fileActions, attr, argv, envp);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int posix_spawn_file_actions_init(long fileActions) {
        try {
            return (int) (long) H_posix_spawn_file_actions_init.H.invokeExact(errnoState(), fileActions, 0L, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int posix_spawn_file_actions_destroy(long fileActions) {
        try {
            return (int) (long) H_posix_spawn_file_actions_destroy.H.invokeExact(errnoState(), fileActions, 0L, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int posix_spawn_file_actions_adddup2(long fileActions, int fd, int newFd) {
        try {
            return (int) (long) H_posix_spawn_file_actions_adddup2.H.invokeExact(errnoState(), fileActions, (long) fd, (long) newFd, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int posix_spawn_file_actions_addopen(long fileActions, int fd, long path, int flags, int mode) {
        try {
            return (int) (long) H_posix_spawn_file_actions_addopen.H.invokeExact(errnoState(), fileActions, (long) fd, path, (long) flags, (long) mode, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int posix_spawn_file_actions_addclose(long fileActions, int fd) {
        try {
            return (int) (long) H_posix_spawn_file_actions_addclose.H.invokeExact(errnoState(), fileActions, (long) fd, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int posix_spawn_file_actions_addclosefrom_np(long fileActions, int from) {
        try {
            return (int) (long) H_posix_spawn_file_actions_addclosefrom_np.H.invokeExact(errnoState(), fileActions, (long) from, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int posix_spawn_file_actions_addchdir_np(long fileActions, long path) {
        try {
            return (int) (long) H_posix_spawn_file_actions_addchdir_np.H.invokeExact(errnoState(), fileActions, path, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int posix_spawnattr_init(long attr) {
        try {
            return (int) (long) H_posix_spawnattr_init.H.invokeExact(errnoState(), attr, 0L, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int posix_spawnattr_destroy(long attr) {
        try {
            return (int) (long) H_posix_spawnattr_destroy.H.invokeExact(errnoState(), attr, 0L, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int posix_spawnattr_setflags(long attr, short flags) {
        try {
            return (int) (long) H_posix_spawnattr_setflags.H.invokeExact(errnoState(), attr, (long) flags, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int posix_spawnattr_setpgroup(long attr, int processGroup) {
        try {
            return (int) (long) H_posix_spawnattr_setpgroup.H.invokeExact(errnoState(), attr, (long) processGroup, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int posix_spawnattr_setsigmask(long attr, long set) {
        try {
            return (int) (long) H_posix_spawnattr_setsigmask.H.invokeExact(errnoState(), attr, set, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int posix_spawnattr_setsigdefault(long attr, long set) {
        try {
            return (int) (long) H_posix_spawnattr_setsigdefault.H.invokeExact(errnoState(), attr, set, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int sigemptyset(long set) {
        try {
            return (int) (long) H_sigemptyset.H.invokeExact(errnoState(), set, 0L, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int sigfillset(long set) {
        try {
            return (int) (long) H_sigfillset.H.invokeExact(errnoState(), set, 0L, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int pipe2(long fds, int flags) {
        try {
            return (int) (long) H_pipe2.H.invokeExact(errnoState(), fds, (long) flags, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int open(long path, int flags, int mode) {
        try {
            return (int) (long) H_open.H.invokeExact(errnoState(), path, (long) flags, (long) mode, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int close(int fd) {
        try {
            return (int) (long) H_close.H.invokeExact(errnoState(), (long) fd, 0L, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int fcntl(int fd, int cmd, int arg) {
        try {
            return (int) (long) H_fcntl.H.invokeExact(errnoState(), (long) fd, (long) cmd, (long) arg, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int ioctlInt(int fd, long request, long value) {
        try {
            return (int) (long) H_ioctl.H.invokeExact(errnoState(), (long) fd, request, value, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public long write(int fd, long buffer, long count) {
        try {
            return (long) H_write.H.invokeExact(errnoState(), (long) fd, buffer, count, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public long read(int fd, long buffer, long count) {
        try {
            return (long) H_read.H.invokeExact(errnoState(), (long) fd, buffer, count, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int kill(int pid, int signal) {
        try {
            return (int) (long) H_kill.H.invokeExact(errnoState(), (long) pid, (long) signal, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int wait4(int pid, long status, int options, long rusage) {
        try {
            return (int) (long) H_wait4.H.invokeExact(errnoState(), (long) pid, status, (long) options, rusage, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public long syscall(long number, long arg1, long arg2) {
        try {
            return (long) H_syscall.H.invokeExact(errnoState(), number, arg1, arg2, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int poll(long fds, long count, int timeoutMillis) {
        try {
            return (int) (long) H_poll.H.invokeExact(errnoState(), fds, count, (long) timeoutMillis, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int sched_getaffinity(int tid, long size, long mask) {
        try {
            return (int) (long) H_sched_getaffinity.H.invokeExact(errnoState(), (long) tid, size, mask, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int sched_setaffinity(int tid, long size, long mask) {
        try {
            return (int) (long) H_sched_setaffinity.H.invokeExact(errnoState(), (long) tid, size, mask, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int epoll_create1(int flags) {
        try {
            return (int) (long) H_epoll_create1.H.invokeExact(errnoState(), (long) flags, 0L, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int epoll_ctl(int epfd, int op, int fd, long event) {
        try {
            return (int) (long) H_epoll_ctl.H.invokeExact(errnoState(), (long) epfd, (long) op, (long) fd, event, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int epoll_wait(int epfd, long events, int maxEvents, int timeoutMillis) {
        try {
            return (int) (long) H_epoll_wait.H.invokeExact(errnoState(), (long) epfd, events, (long) maxEvents, (long) timeoutMillis, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int eventfd(int initialValue, int flags) {
        try {
            return (int) (long) H_eventfd.H.invokeExact(errnoState(), (long) initialValue, (long) flags, 0L, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int socket(int domain, int type, int protocol) {
        try {
            return (int) (long) H_socket.H.invokeExact(errnoState(), (long) domain, (long) type, (long) protocol, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public long sendto(int fd, long buffer, long length, int flags, long address, int addressLength) {
        try {
            return (long) H_sendto.H.invokeExact(errnoState(), (long) fd, buffer, length, (long) flags, address, (long) addressLength);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static final class H_calloc {
        static final MethodHandle H = bind("calloc");
    }

    private static final class H_socket {
        static final MethodHandle H = bind("socket");
    }

    private static final class H_sendto {
        static final MethodHandle H = bind("sendto");
    }

    private static final class H_free {
        static final MethodHandle H = bind("free");
    }

    private static final class H_readArray {
        static final MethodHandle H = bind("read", ARRAY_CALL, CAPTURE_ERRNO, Linker.Option.critical(true));
    }

    private static final class H_writeArray {
        static final MethodHandle H = bind("write", ARRAY_CALL, CAPTURE_ERRNO, Linker.Option.critical(true));
    }

    private static final class H_posix_spawnp {
        static final MethodHandle H = bind("posix_spawnp");
    }

    private static final class H_posix_spawn_file_actions_init {
        static final MethodHandle H = bind("posix_spawn_file_actions_init");
    }

    private static final class H_posix_spawn_file_actions_destroy {
        static final MethodHandle H = bind("posix_spawn_file_actions_destroy");
    }

    private static final class H_posix_spawn_file_actions_adddup2 {
        static final MethodHandle H = bind("posix_spawn_file_actions_adddup2");
    }

    private static final class H_posix_spawn_file_actions_addopen {
        static final MethodHandle H = bind("posix_spawn_file_actions_addopen");
    }

    private static final class H_posix_spawn_file_actions_addclose {
        static final MethodHandle H = bind("posix_spawn_file_actions_addclose");
    }

    private static final class H_posix_spawn_file_actions_addclosefrom_np {
        static final MethodHandle H = bind("posix_spawn_file_actions_addclosefrom_np");
    }

    private static final class H_posix_spawn_file_actions_addchdir_np {
        static final MethodHandle H = bind("posix_spawn_file_actions_addchdir_np");
    }

    private static final class H_posix_spawnattr_init {
        static final MethodHandle H = bind("posix_spawnattr_init");
    }

    private static final class H_posix_spawnattr_destroy {
        static final MethodHandle H = bind("posix_spawnattr_destroy");
    }

    private static final class H_posix_spawnattr_setflags {
        static final MethodHandle H = bind("posix_spawnattr_setflags");
    }

    private static final class H_posix_spawnattr_setpgroup {
        static final MethodHandle H = bind("posix_spawnattr_setpgroup");
    }

    private static final class H_posix_spawnattr_setsigmask {
        static final MethodHandle H = bind("posix_spawnattr_setsigmask");
    }

    private static final class H_posix_spawnattr_setsigdefault {
        static final MethodHandle H = bind("posix_spawnattr_setsigdefault");
    }

    private static final class H_sigemptyset {
        static final MethodHandle H = bind("sigemptyset");
    }

    private static final class H_sigfillset {
        static final MethodHandle H = bind("sigfillset");
    }

    private static final class H_pipe2 {
        static final MethodHandle H = bind("pipe2");
    }

    private static final class H_open {
        static final MethodHandle H = bindVariadic("open");
    }

    private static final class H_close {
        static final MethodHandle H = bind("close");
    }

    private static final class H_fcntl {
        static final MethodHandle H = bindVariadic("fcntl");
    }

    private static final class H_ioctl {
        static final MethodHandle H = bindVariadic("ioctl");
    }

    private static final class H_write {
        static final MethodHandle H = bind("write");
    }

    private static final class H_read {
        static final MethodHandle H = bind("read");
    }

    private static final class H_kill {
        static final MethodHandle H = bind("kill");
    }

    private static final class H_wait4 {
        static final MethodHandle H = bind("wait4");
    }

    private static final class H_syscall {
        // glibc's syscall() is assembly that only moves registers (it reads no variadic arguments): the plain shape serves.
        static final MethodHandle H = bind("syscall");
    }

    private static final class H_poll {
        static final MethodHandle H = bind("poll");
    }

    private static final class H_sched_getaffinity {
        static final MethodHandle H = bind("sched_getaffinity");
    }

    private static final class H_sched_setaffinity {
        static final MethodHandle H = bind("sched_setaffinity");
    }

    private static final class H_epoll_create1 {
        static final MethodHandle H = bind("epoll_create1");
    }

    private static final class H_epoll_ctl {
        static final MethodHandle H = bind("epoll_ctl");
    }

    private static final class H_epoll_wait {
        static final MethodHandle H = bind("epoll_wait");
    }

    private static final class H_eventfd {
        static final MethodHandle H = bind("eventfd");
    }
}
