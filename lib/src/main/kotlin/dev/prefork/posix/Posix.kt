package dev.prefork.posix

import dev.prefork.log.logger
import dev.prefork.log.warn
import java.nio.file.Path

private val logger = logger("dev.prefork.posix.Posix")

/**
 * The C calls prefork makes, through one of three bindings chosen once per JVM ([Native]):
 * prefork's own JNI library ([JniPosix]), the JDK's foreign function API on JDK 22 and later
 * (`FfmPosix`, compiled for release 22 and loaded only there), or jffi, the JNI layer of the jnr
 * project ([JffiPosix]). Nothing outside this package knows which.
 *
 * Pointers are plain addresses: memory comes from [allocate] and is read and written with the
 * accessors here, so the wrappers in this package hold no binding's pointer type. Every call
 * reports failure the C way; [errno] is errno as it was right after the last call through the
 * binding on this thread (successful or not, [allocate] and [free] included): read it before
 * making any other call. The wrappers turn it into exceptions that name the call and the
 * errno. The `posix_spawn` family returns its error instead.
 *
 * The binding is made at the first call, not before (a worker that never spawns loads none).
 * The JNI library registers every function at once, which costs next to nothing; FFM and jffi
 * bind each function when it is first called, because each costs a cold JVM something.
 */
@Suppress("FunctionName", "ktlint:standard:function-naming")
internal interface Posix {
    /** What the binding is, for logs and benchmarks: "jni", "ffm" or "jffi". */
    val name: String

    fun errno(): Int

    /** Zeroed native memory, freed with [free]. */
    fun allocate(bytes: Long): Long
    fun free(address: Long)
    fun putShort(address: Long, value: Short)
    fun putInt(address: Long, value: Int)
    fun putLong(address: Long, value: Long)
    fun getInt(address: Long): Int
    fun getLong(address: Long): Long
    fun putBytes(address: Long, bytes: ByteArray, offset: Int, length: Int)

    fun posix_spawnp(pid: Long, file: Long, fileActions: Long, attr: Long, argv: Long, envp: Long): Int
    fun posix_spawn_file_actions_init(fileActions: Long): Int
    fun posix_spawn_file_actions_destroy(fileActions: Long): Int
    fun posix_spawn_file_actions_adddup2(fileActions: Long, fd: Int, newFd: Int): Int
    fun posix_spawn_file_actions_addopen(fileActions: Long, fd: Int, path: Long, flags: Int, mode: Int): Int
    fun posix_spawn_file_actions_addclose(fileActions: Long, fd: Int): Int

    /** glibc 2.34+; throws [UnsatisfiedLinkError] where the C library lacks it. */
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

    /** Two ints at [fds]. */
    fun pipe2(fds: Long, flags: Int): Int
    fun open(path: Long, flags: Int, mode: Int): Int
    fun close(fd: Int): Int
    fun fcntl(fd: Int, cmd: Int, arg: Int): Int
    fun ioctlInt(fd: Int, request: Long, value: Long): Int
    fun write(fd: Int, buffer: Long, count: Long): Long
    fun read(fd: Int, buffer: Long, count: Long): Long

    /**
     * `read(2)` straight into [bytes] (no copy but the kernel's). Only for a non-blocking fd:
     * the JVM may not reach a safepoint while the array is in native hands.
     */
    fun readArray(fd: Int, bytes: ByteArray, offset: Int, length: Int): Long

    /** `write(2)` straight from [bytes]; only for a non-blocking fd. */
    fun writeArray(fd: Int, bytes: ByteArray, offset: Int, length: Int): Long

    fun kill(pid: Int, signal: Int): Int
    fun wait4(pid: Int, status: Long, options: Int, rusage: Long): Int
    fun syscall(number: Long, arg1: Long, arg2: Long): Long
    fun poll(fds: Long, count: Long, timeoutMillis: Int): Int

    /** The CPUs thread [tid] (0: the calling one) may run on, as a `cpu_set_t` of [size] bytes at [mask]; 0 or -1. */
    fun sched_getaffinity(tid: Int, size: Long, mask: Long): Int
    fun sched_setaffinity(tid: Int, size: Long, mask: Long): Int

    fun epoll_create1(flags: Int): Int
    fun epoll_ctl(epfd: Int, op: Int, fd: Int, event: Long): Int
    fun epoll_wait(epfd: Int, events: Long, maxEvents: Int, timeoutMillis: Int): Int
    fun eventfd(initialValue: Int, flags: Int): Int

    fun socket(domain: Int, type: Int, protocol: Int): Int

    /** `sendto(2)` of [length] bytes at [buffer] to the socket address at [address]. */
    fun sendto(fd: Int, buffer: Long, length: Long, flags: Int, address: Long, addressLength: Int): Long
}

/**
 * The binding of this JVM: prefork's JNI library ([JniPosix]) where this jar has it for the
 * platform and it loads; otherwise FFM where the JDK has it final (22+), this build of prefork
 * holds it, and the JVM lets the unnamed module make restricted calls; jffi otherwise. A library
 * that is there but does not load (a `noexec` `java.io.tmpdir`, say) is warned about once, with
 * the binding used instead.
 *
 * `-Dprefork.native=jni|ffm|jffi` asks for one binding and makes a JVM that cannot have it fail
 * rather than fall back (`jnr`, jffi's earlier name, is `jffi`); benchmarks and the tests of
 * each binding use it.
 */
internal object Native {
    val posix: Posix = choose().let { chosen ->
        System.getProperty("prefork.native.calls")?.let { CallRecorder.wrap(chosen, Path.of(it)) } ?: chosen
    }

    /** errno as it was after the last call on this thread: read it right after the failed call, before any other. */
    fun errno(): Int = posix.errno()

    private fun choose(): Posix {
        val wanted = System.getProperty("prefork.native", "")
        return when (wanted) {
            "jni" -> orFail(wanted) { JniPosix.load() }
            "ffm" -> orFail(wanted) { ffm() }
            "jffi", "jnr" -> JffiPosix()
            "" -> try {
                JniPosix.load()
            } catch (e: Throwable) {
                if (e is VirtualMachineError) throw e
                fallBack(e)
            }
            else -> throw IllegalArgumentException("-Dprefork.native=$wanted: expected jni, ffm or jffi")
        }
    }

    private fun fallBack(jni: Throwable): Posix {
        // A jar built without the library for this platform is a choice, not a fault: say nothing.
        val absent = jni is JniPosix.Absent
        if (Runtime.version().feature() >= 22) {
            try {
                return ffm().also { if (!absent) logger.warn { "prefork's JNI library did not load ($jni); calling C through FFM" } }
            } catch (e: Throwable) {
                if (e is VirtualMachineError) throw e
                logger.warn { "neither prefork's JNI library (${if (absent) "not in this jar" else jni.toString()}) nor FFM ($e) can be used; calling C through jffi" }
                return jffi(jni)
            }
        }
        if (!absent) logger.warn { "prefork's JNI library did not load ($jni); calling C through jffi" }
        return jffi(jni)
    }

    /** The last resort; if it fails too, the JNI library's failure travels with its error. */
    private fun jffi(jni: Throwable): Posix = try {
        JffiPosix()
    } catch (e: Throwable) {
        e.addSuppressed(jni)
        throw e
    }

    /**
     * The FFM binding. A build made on a JDK before 22 carries no FFM classes; a JVM that denies
     * native access to the unnamed module, or has no linker for this platform, refuses the
     * restricted calls.
     */
    private fun ffm(): Posix {
        check(Runtime.version().feature() >= 22) { "FFM needs JDK 22 or later, this is ${Runtime.version()}" }
        return try {
            Class.forName("dev.prefork.posix.ffm.FfmPosix").getDeclaredConstructor().newInstance() as Posix
        } catch (e: java.lang.reflect.InvocationTargetException) {
            throw e.cause ?: e
        }
    }

    private inline fun orFail(wanted: String, binding: () -> Posix): Posix = try {
        binding()
    } catch (e: Throwable) {
        if (e is VirtualMachineError) throw e
        throw IllegalStateException("-Dprefork.native=$wanted: that binding cannot be used ($e)", e)
    }
}

/** A NUL-terminated copy of [text] in native memory, freed with [Posix.free]. */
internal fun Posix.cString(text: String): Long {
    val bytes = text.toByteArray()
    val address = allocate(bytes.size + 1L)
    putBytes(address, bytes, 0, bytes.size)
    return address
}
