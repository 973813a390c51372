package dev.prefork.posix

import dev.prefork.posix.Native.libc
import jnr.ffi.Memory
import jnr.ffi.Pointer
import jnr.ffi.byref.IntByReference
import java.io.File

/**
 * posix_spawnp with file actions: the child gets exactly the fds in [fdMap] and nothing else.
 *
 * `fdMap[target]` names what the child's fd `target` becomes: a parent fd to dup2 from,
 * [INHERIT] (only for 0, 1 and 2: the parent's own stdio), [DEV_NULL], or [STDOUT] (dup of
 * the child's fd 1, for `stderr = STDOUT`). Every fd from `fdMap.size` up is closed in the
 * child with `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34+); older glibc falls
 * back to closing what `/proc/self/fd` lists, which can miss an fd another thread opens
 * without close-on-exec during the spawn.
 *
 * Signals are reset in the child: an empty mask and default dispositions for all of them,
 * so a child never inherits the JVM's blocked or ignored signals.
 */
internal object Spawn {
    const val INHERIT = -1
    const val DEV_NULL = -2
    const val STDOUT = -3

    private const val FILE_ACTIONS_SIZE = 256L // glibc: 80 bytes
    private const val ATTR_SIZE = 512L // glibc: 336 bytes
    private const val SIGSET_SIZE = 128L

    @Volatile private var closeFromAvailable = true

    /** The last environment block, reused while callers pass the very same list (the inherited environment). */
    @Volatile private var lastEnvironment: Pair<List<String>, StringArray>? = null

    /** posix_spawn's structs, initialised and destroyed around each call; one set per thread. */
    private class Structs {
        val actions: Pointer = Memory.allocateDirect(Native.runtime, FILE_ACTIONS_SIZE)
        val attr: Pointer = Memory.allocateDirect(Native.runtime, ATTR_SIZE)
        val sigs: Pointer = Memory.allocateDirect(Native.runtime, SIGSET_SIZE)
    }

    private val scratchStructs = ThreadLocal.withInitial { Structs() }

    /**
     * Starts [argv] and returns the child's pid; throws [ErrnoException] naming the program.
     * With [newProcessGroup] the child leads a process group of its own (pgid = its pid).
     */
    fun spawn(argv: List<String>, env: List<String>, cwd: String?, fdMap: IntArray, newProcessGroup: Boolean = false): Int {
        require(argv.isNotEmpty()) { "argv is empty" }
        val scratch = scratchStructs.get()
        val actions = scratch.actions
        val attr = scratch.attr
        val sigs = scratch.sigs
        val argvBlock = StringArray(argv)
        val cached = lastEnvironment
        val envBlock = if (cached != null && cached.first === env) cached.second else StringArray(env).also { lastEnvironment = env to it }
        val moved = moveClashingSources(fdMap)
        checkReturned(libc.posix_spawn_file_actions_init(actions)) { "posix_spawn_file_actions_init" }
        try {
            checkReturned(libc.posix_spawnattr_init(attr)) { "posix_spawnattr_init" }
            try {
                addFileActions(actions, moved, cwd)
                libc.sigemptyset(sigs)
                libc.posix_spawnattr_setsigmask(attr, sigs)
                libc.sigfillset(sigs)
                libc.posix_spawnattr_setsigdefault(attr, sigs)
                var flags = Linux.POSIX_SPAWN_SETSIGMASK.toInt() or Linux.POSIX_SPAWN_SETSIGDEF.toInt()
                if (newProcessGroup) {
                    libc.posix_spawnattr_setpgroup(attr, 0)
                    flags = flags or Linux.POSIX_SPAWN_SETPGROUP.toInt()
                }
                libc.posix_spawnattr_setflags(attr, flags.toShort())
                val pid = IntByReference()
                val error = libc.posix_spawnp(pid, argv[0], actions, attr, argvBlock.pointer, envBlock.pointer)
                if (error != 0) {
                    val where = if (cwd != null) " (in directory \"$cwd\")" else ""
                    throw ErrnoException("Cannot run program \"${argv[0]}\"$where: ${describeErrno(error)}", error)
                }
                // jnr frees native memory on finalization: keep the blocks alive across the native call.
                java.lang.ref.Reference.reachabilityFence(argvBlock)
                java.lang.ref.Reference.reachabilityFence(envBlock)
                return pid.value
            } finally {
                libc.posix_spawnattr_destroy(attr)
            }
        } finally {
            libc.posix_spawn_file_actions_destroy(actions)
            for (target in moved.indices) {
                if (moved[target] != fdMap[target]) Fds.closeQuietly(moved[target])
            }
        }
    }

    /**
     * dup2 runs in order, so a source fd that is also an earlier target would be overwritten
     * before it is read; such sources are first copied above every target.
     */
    private fun moveClashingSources(fdMap: IntArray): IntArray {
        val moved = fdMap.copyOf()
        for (target in fdMap.indices) {
            val source = fdMap[target]
            if (source >= 0 && source != target && source < fdMap.size) moved[target] = Fds.dupAbove(source, fdMap.size)
        }
        return moved
    }

    private fun addFileActions(actions: Pointer, fdMap: IntArray, cwd: String?) {
        for (target in fdMap.indices) {
            val source = fdMap[target]
            val result = when {
                source == INHERIT -> {
                    require(target <= 2) { "fd $target cannot be inherited implicitly" }
                    0
                }
                source == DEV_NULL -> libc.posix_spawn_file_actions_addopen(actions, target, "/dev/null", Linux.O_RDWR, 0)
                source == STDOUT -> libc.posix_spawn_file_actions_adddup2(actions, 1, target)
                // dup2 onto itself is a no-op that would leave close-on-exec set; glibc 2.35+ clears it.
                else -> libc.posix_spawn_file_actions_adddup2(actions, source, target)
            }
            checkReturned(result) { "posix_spawn_file_actions for fd $target" }
        }
        if (cwd != null) {
            val result = libc.posix_spawn_file_actions_addchdir_np(actions, cwd)
            checkReturned(result) { "posix_spawn_file_actions_addchdir_np \"$cwd\"" }
        }
        closeTheRest(actions, fdMap.size)
    }

    private fun closeTheRest(actions: Pointer, from: Int) {
        if (closeFromAvailable) {
            try {
                val result = libc.posix_spawn_file_actions_addclosefrom_np(actions, from)
                checkReturned(result) { "posix_spawn_file_actions_addclosefrom_np" }
                return
            } catch (missing: UnsatisfiedLinkError) {
                closeFromAvailable = false
            }
        }
        File("/proc/self/fd").list()?.mapNotNull { it.toIntOrNull() }?.filter { it >= from }?.forEach { fd ->
            libc.posix_spawn_file_actions_addclose(actions, fd)
        }
    }

    /** A NULL-terminated `char *[]` in one native block, alive as long as this object is. */
    private class StringArray(strings: List<String>) {
        val pointer: Pointer

        init {
            val runtime = Native.runtime
            val encoded = strings.map { it.toByteArray() }
            val slots = (encoded.size + 1) * runtime.addressSize().toLong()
            val total = slots + encoded.sumOf { it.size + 1L }
            pointer = Memory.allocateDirect(runtime, total, true)
            var offset = slots
            encoded.forEachIndexed { i, bytes ->
                pointer.put(offset, bytes, 0, bytes.size)
                pointer.putByte(offset + bytes.size, 0)
                pointer.putAddress(i * runtime.addressSize().toLong(), pointer.address() + offset)
                offset += bytes.size + 1
            }
            pointer.putAddress(encoded.size * runtime.addressSize().toLong(), 0L)
        }
    }
}
