package dev.prefork.posix

import dev.prefork.posix.Native.posix
import java.io.File

/**
 * posix_spawnp with file actions: the child gets exactly the fds in [fdMap] and nothing else.
 *
 * `fdMap[target]` names what the child's fd `target` becomes: a parent fd to dup2 from,
 * [INHERIT] (only for 0, 1 and 2: the parent's own stdio), [DEV_NULL], or [STDOUT] (dup of
 * the child's fd 1, for `stderr = STDOUT`), or [TERMINAL] (the pseudo-terminal at `terminal`,
 * opened in the child). Every fd from `fdMap.size` up is closed in the
 * child with `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34+); older glibc falls
 * back to closing what `/proc/self/fd` lists, which can miss an fd another thread opens
 * without close-on-exec during the spawn.
 *
 * Signals are reset in the child: an empty mask and default dispositions for all of them,
 * so a child never inherits the JVM's blocked or ignored signals.
 *
 * With a `terminal`, the child starts a session of its own (`POSIX_SPAWN_SETSID`, glibc 2.26+,
 * which glibc applies before the file actions) and then opens the terminal without
 * `O_NOCTTY`: as the leader of a session without a controlling terminal, the first such open
 * makes it the child's controlling terminal, with the child's process group in the foreground.
 */
internal object Spawn {
    const val INHERIT = -1
    const val DEV_NULL = -2
    const val STDOUT = -3
    const val TERMINAL = -4

    // posix_spawn's structs and the child's pid, in one block per call.
    private const val FILE_ACTIONS_SIZE = 256L // glibc: 80 bytes
    private const val ATTR_SIZE = 512L // glibc: 336 bytes
    private const val SIGSET_SIZE = 128L
    private const val ATTR = FILE_ACTIONS_SIZE
    private const val SIGS = ATTR + ATTR_SIZE
    private const val PID = SIGS + SIGSET_SIZE
    private const val STRUCTS_SIZE = PID + 8

    /** False once glibc turned out to lack `posix_spawn_file_actions_addclosefrom_np` (before 2.34); tests set it to take that path. */
    @Volatile internal var closeFromAvailable = true

    /** The last environment, encoded, reused while callers pass the very same list (the inherited environment). */
    @Volatile private var lastEnvironment: Pair<List<String>, StringBlock>? = null

    private val devNull = "/dev/null\u0000".toByteArray()

    /**
     * Starts [argv] and returns the child's pid; throws [ErrnoException] naming the program.
     * With [newProcessGroup] the child leads a process group of its own (pgid = its pid); with a
     * [terminal] (the path of a pseudo-terminal, for the [TERMINAL] fds) a session of its own,
     * which makes it a group leader too.
     */
    fun spawn(
        argv: List<String>,
        env: List<String>,
        cwd: String?,
        fdMap: IntArray,
        newProcessGroup: Boolean = false,
        terminal: String? = null,
    ): Int {
        require(argv.isNotEmpty()) { "argv is empty" }
        val argvBlock = StringBlock(argv)
        val cached = lastEnvironment
        val envBlock = if (cached != null && cached.first === env) cached.second else StringBlock(env).also { lastEnvironment = env to it }
        val file = argv[0].toByteArray()
        val cwdBytes = cwd?.toByteArray()
        val terminalBytes = terminal?.toByteArray()
        // One block: the structs, then file name, /dev/null, the directory, the terminal, argv and envp.
        val fileAt = STRUCTS_SIZE
        val devNullAt = fileAt + file.size + 1
        val cwdAt = devNullAt + devNull.size
        val terminalAt = cwdAt + (cwdBytes?.size?.plus(1) ?: 0)
        val argvAt = (terminalAt + (terminalBytes?.size?.plus(1) ?: 0) + 7) and 7L.inv()
        val envAt = argvAt + argvBlock.size
        val moved = moveClashingSources(fdMap)
        try {
            return withNativeMemory(envAt + envBlock.size) { block ->
                posix.putBytes(block + fileAt, file, 0, file.size)
                posix.putBytes(block + devNullAt, devNull, 0, devNull.size)
                cwdBytes?.let { posix.putBytes(block + cwdAt, it, 0, it.size) }
                terminalBytes?.let { posix.putBytes(block + terminalAt, it, 0, it.size) }
                argvBlock.writeAt(block + argvAt)
                envBlock.writeAt(block + envAt)
                val actions = block
                val attr = block + ATTR
                val sigs = block + SIGS
                checkReturned(posix.posix_spawn_file_actions_init(actions)) { "posix_spawn_file_actions_init" }
                try {
                    checkReturned(posix.posix_spawnattr_init(attr)) { "posix_spawnattr_init" }
                    try {
                        addFileActions(actions, moved, block + devNullAt, terminal?.let { block + terminalAt }, cwd?.let { block + cwdAt }, cwd)
                        posix.sigemptyset(sigs)
                        posix.posix_spawnattr_setsigmask(attr, sigs)
                        posix.sigfillset(sigs)
                        posix.posix_spawnattr_setsigdefault(attr, sigs)
                        var flags = Linux.POSIX_SPAWN_SETSIGMASK.toInt() or Linux.POSIX_SPAWN_SETSIGDEF.toInt()
                        if (terminal != null) {
                            // A session leader is a group leader already: setpgid would fail (EPERM).
                            flags = flags or Linux.POSIX_SPAWN_SETSID.toInt()
                        } else if (newProcessGroup) {
                            posix.posix_spawnattr_setpgroup(attr, 0)
                            flags = flags or Linux.POSIX_SPAWN_SETPGROUP.toInt()
                        }
                        posix.posix_spawnattr_setflags(attr, flags.toShort())
                        val error = posix.posix_spawnp(block + PID, block + fileAt, actions, attr, block + argvAt, block + envAt)
                        if (error != 0) {
                            val where = if (cwd != null) " (in directory \"$cwd\")" else ""
                            throw ErrnoException("Cannot run program \"${argv[0]}\"$where: ${describeErrno(error)}", error)
                        }
                        posix.getInt(block + PID)
                    } finally {
                        posix.posix_spawnattr_destroy(attr)
                    }
                } finally {
                    posix.posix_spawn_file_actions_destroy(actions)
                }
            }
        } finally {
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
        try {
            for (target in fdMap.indices) {
                val source = fdMap[target]
                if (source >= 0 && source != target && source < fdMap.size) moved[target] = Fds.dupAbove(source, fdMap.size)
            }
        } catch (e: ErrnoException) {
            for (target in moved.indices) {
                if (moved[target] != fdMap[target]) Fds.closeQuietly(moved[target])
            }
            throw e
        }
        return moved
    }

    private fun addFileActions(actions: Long, fdMap: IntArray, devNull: Long, terminal: Long?, cwdAddress: Long?, cwd: String?) {
        for (target in fdMap.indices) {
            val source = fdMap[target]
            val result = when {
                source == INHERIT -> {
                    require(target <= 2) { "fd $target cannot be inherited implicitly" }
                    0
                }
                source == DEV_NULL -> posix.posix_spawn_file_actions_addopen(actions, target, devNull, Linux.O_RDWR, 0)
                source == STDOUT -> posix.posix_spawn_file_actions_adddup2(actions, 1, target)
                source == TERMINAL -> posix.posix_spawn_file_actions_addopen(actions, target, checkNotNull(terminal) { "fd $target: no terminal" }, Linux.O_RDWR, 0)
                // dup2 onto itself is a no-op that would leave close-on-exec set; glibc 2.35+ clears it.
                else -> posix.posix_spawn_file_actions_adddup2(actions, source, target)
            }
            checkReturned(result) { "posix_spawn_file_actions for fd $target" }
        }
        if (cwdAddress != null) {
            val result = posix.posix_spawn_file_actions_addchdir_np(actions, cwdAddress)
            checkReturned(result) { "posix_spawn_file_actions_addchdir_np \"$cwd\"" }
        }
        closeTheRest(actions, fdMap.size)
    }

    private fun closeTheRest(actions: Long, from: Int) {
        if (closeFromAvailable) {
            try {
                val result = posix.posix_spawn_file_actions_addclosefrom_np(actions, from)
                checkReturned(result) { "posix_spawn_file_actions_addclosefrom_np" }
                return
            } catch (missing: LinkageError) { // glibc before 2.34
                closeFromAvailable = false
            }
        }
        File("/proc/self/fd").list()?.mapNotNull { it.toIntOrNull() }?.filter { it >= from }?.forEach { fd ->
            posix.posix_spawn_file_actions_addclose(actions, fd)
        }
    }

    /**
     * A NULL-terminated `char *[]` with its strings, encoded once and written into native
     * memory for each call: [size] bytes, 8-byte aligned, pointers first.
     */
    private class StringBlock(strings: List<String>) {
        private val strings: ByteArray
        private val offsets: IntArray
        private val slots = (strings.size + 1) * 8L
        val size: Long

        init {
            val encoded = arrayOfNulls<ByteArray>(strings.size)
            var total = 0
            for (i in 0 until strings.size) {
                val bytes = strings[i].toByteArray()
                encoded[i] = bytes
                total += bytes.size + 1
            }
            this.strings = ByteArray(total)
            offsets = IntArray(encoded.size)
            var offset = 0
            for (i in encoded.indices) {
                val bytes = encoded[i]!!
                offsets[i] = offset
                System.arraycopy(bytes, 0, this.strings, offset, bytes.size)
                offset += bytes.size + 1
            }
            size = (slots + this.strings.size + 7) and 7L.inv()
        }

        fun writeAt(address: Long) {
            val text = address + slots
            posix.putBytes(text, strings, 0, strings.size)
            for (i in offsets.indices) posix.putLong(address + i * 8L, text + offsets[i])
            posix.putLong(address + offsets.size * 8L, 0L)
        }
    }
}
