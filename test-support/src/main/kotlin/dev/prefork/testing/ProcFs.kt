package dev.prefork.testing

import java.io.File

/** Test helpers that read what the kernel says about processes and fds. */
object ProcFs {
    val selfPid: Long = ProcessHandle.current().pid()

    fun openFds(pid: Long = selfPid): List<Int> =
        File("/proc/$pid/fd").list().orEmpty().mapNotNull { it.toIntOrNull() }.sorted()

    fun threadCount(): Int = File("/proc/self/task").list().orEmpty().size

    /** The state letter of [pid] ('Z' for a zombie), or null if there is no such process. */
    fun state(pid: Long): Char? = try {
        val stat = File("/proc/$pid/stat").readText()
        stat.substring(stat.lastIndexOf(')') + 2)[0]
    } catch (e: java.io.IOException) {
        null
    }

    /** Children of this JVM that are zombies (exited, never reaped). */
    fun zombieChildren(): List<Long> = File("/proc").list().orEmpty().mapNotNull { it.toLongOrNull() }.filter { pid ->
        try {
            val stat = File("/proc/$pid/stat").readText()
            val fields = stat.substring(stat.lastIndexOf(')') + 2).split(' ')
            fields[0] == "Z" && fields[1].toLong() == selfPid
        } catch (e: java.io.IOException) {
            false
        }
    }

    fun alive(pid: Long): Boolean = state(pid).let { it != null && it != 'Z' }

    /** The TCP ports [pid] listens on: its socket fds matched, by inode, to the LISTEN entries of its network namespace. */
    fun listeningPorts(pid: Long): Set<Int> {
        val inodes = File("/proc/$pid/fd").listFiles().orEmpty().mapNotNull { fd ->
            try {
                Regex("socket:\\[(\\d+)]").matchEntire(java.nio.file.Files.readSymbolicLink(fd.toPath()).toString())?.groupValues?.get(1)
            } catch (e: java.io.IOException) {
                null // closed meanwhile
            }
        }.toSet()
        return listOf("tcp", "tcp6").flatMap { File("/proc/$pid/net/$it").readLines().drop(1) }
            .map { it.trim().split(Regex("\\s+")) }
            .filter { it[3] == "0A" && it[9] in inodes } // 0A: TCP_LISTEN
            .map { it[1].substringAfterLast(':').toInt(16) }
            .toSet()
    }
}
