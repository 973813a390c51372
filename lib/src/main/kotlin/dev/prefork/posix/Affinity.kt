package dev.prefork.posix

import dev.prefork.posix.Native.posix
import java.io.File

/**
 * CPU affinity, Linux's `sched_getaffinity(2)` and `sched_setaffinity(2)`: the CPUs, by number,
 * a thread may run on. A new thread, and a process started by a thread, inherit its maker's
 * set; a process already running is placed thread by thread ([pin]).
 */
internal object Affinity {
    /** glibc's `cpu_set_t`: 1024 CPUs. A kernel built for more refuses it with EINVAL; it is then doubled. */
    private const val FIRST_SIZE = 128L
    private const val MAX_SIZE = 1L shl 16
    private const val MAX_PASSES = 5

    /** The CPUs thread [tid] (0: the calling thread; a process's pid: its main thread) may run on, ascending. */
    fun of(tid: Int = 0): IntArray {
        var size = FIRST_SIZE
        while (true) {
            val mask = posix.allocate(size)
            try {
                if (posix.sched_getaffinity(tid, size, mask) == 0) return decode(mask, size)
                val errno = Native.errno()
                if (errno != Linux.EINVAL || size >= MAX_SIZE) throw errnoException("sched_getaffinity of thread $tid", errno)
            } finally {
                posix.free(mask)
            }
            size *= 2
        }
    }

    /** Lets thread [tid] (0: the calling thread) run only on [cpus]; throws [ErrnoException] naming the thread and the CPUs. */
    fun set(tid: Int, cpus: IntArray) {
        require(cpus.isNotEmpty()) { "no CPU to run thread $tid on" }
        val size = maxOf(FIRST_SIZE, ((cpus.max() / Long.SIZE_BITS) + 1L) * Long.SIZE_BYTES)
        val mask = posix.allocate(size)
        try {
            for (cpu in cpus) {
                val word = mask + (cpu / Long.SIZE_BITS) * Long.SIZE_BYTES.toLong()
                posix.putLong(word, posix.getLong(word) or (1L shl (cpu % Long.SIZE_BITS)))
            }
            checkErrno(posix.sched_setaffinity(tid, size, mask)) { "sched_setaffinity of thread $tid to CPUs ${cpus.joinToString(",")}" }
        } finally {
            posix.free(mask)
        }
    }

    /**
     * Places every thread of the running process [pid] on [cpus]. Its threads are read from
     * `/proc/<pid>/task` again until a pass finds none it had not placed: a thread made
     * meanwhile by one not yet placed has its maker's old set. Threads made afterwards inherit
     * their maker's set. Returns false when the process is gone.
     */
    fun pin(pid: Long, cpus: IntArray): Boolean {
        val tasks = File("/proc/$pid/task")
        val placed = HashSet<Int>()
        repeat(MAX_PASSES) {
            val threads = tasks.list() ?: return false
            var found = false
            for (name in threads) {
                val tid = name.toIntOrNull() ?: continue
                if (!placed.add(tid)) continue
                found = true
                try {
                    set(tid, cpus)
                } catch (e: ErrnoException) {
                    if (e.errno != Linux.ESRCH) throw e // ESRCH: the thread ended meanwhile
                }
            }
            if (!found) return true
        }
        return true
    }

    private fun decode(mask: Long, size: Long): IntArray {
        val cpus = ArrayList<Int>()
        for (word in 0 until size / Long.SIZE_BYTES) {
            val bits = posix.getLong(mask + word * Long.SIZE_BYTES)
            for (bit in 0 until Long.SIZE_BITS) {
                if (bits and (1L shl bit) != 0L) cpus += (word * Long.SIZE_BITS + bit).toInt()
            }
        }
        return cpus.toIntArray()
    }
}
