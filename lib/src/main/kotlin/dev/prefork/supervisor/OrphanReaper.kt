package dev.prefork.supervisor

import dev.prefork.log.debug
import dev.prefork.log.info
import dev.prefork.log.logger
import dev.prefork.posix.Wait
import dev.prefork.reaper.Reactor
import java.io.File
import java.io.IOException
import kotlinx.coroutines.delay

private val logger = logger("dev.prefork.supervisor.OrphanReaper")

/**
 * A supervisor running as PID 1 (a container's entry point) inherits every orphan of its
 * container: a worker's grandchild whose parent exited is reparented to it, and stays a zombie
 * (a slot in the process table) until PID 1 reaps it. Nothing else would: prefork never calls
 * `wait4(-1)`, which would also take the exit status of its own children and of the JDK's
 * `ProcessBuilder` ones.
 *
 * So every [INTERVAL_MILLIS] this lists the zombies whose parent is this process and reaps,
 * with `wait4(pid)`, each that prefork does not watch itself and that was a zombie at the
 * previous look too: the JDK's own reaper takes a `ProcessBuilder` child as soon as it exits,
 * long before that.
 */
internal object OrphanReaper {
    private const val INTERVAL_MILLIS = 1_000L

    suspend fun run(): Nothing {
        logger.info { "running as PID 1: orphaned processes of this container are reaped" }
        val self = ProcessHandle.current().pid()
        var previous = emptySet<Int>()
        while (true) {
            delay(INTERVAL_MILLIS)
            val zombies = zombieChildren(self)
            for (pid in zombies) {
                if (pid !in previous || Reactor.shared.isWatching(pid)) continue
                try {
                    Wait.reap(pid)?.let { logger.debug { "reaped orphan pid $pid" } }
                } catch (e: IOException) {
                    // ECHILD: the JDK or prefork took it meanwhile.
                }
            }
            previous = zombies
        }
    }

    /** Pids of the children of [self] (this process) that are zombies, from `/proc/<pid>/stat`. */
    private fun zombieChildren(self: Long): Set<Int> {
        val found = HashSet<Int>()
        for (entry in File("/proc").list() ?: return found) {
            val pid = entry.toIntOrNull() ?: continue
            val stat = try {
                File("/proc/$entry/stat").readText()
            } catch (e: IOException) {
                continue // gone meanwhile
            }
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last ')'.
            val fields = stat.substring(stat.lastIndexOf(')') + 2).split(' ')
            if (fields.size > 1 && fields[0] == "Z" && fields[1].toLongOrNull() == self) found += pid
        }
        return found
    }
}
