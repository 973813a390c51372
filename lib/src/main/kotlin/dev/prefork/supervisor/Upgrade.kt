package dev.prefork.supervisor

import dev.prefork.WORKER_VARIABLE_PREFIX
import dev.prefork.log.info
import dev.prefork.log.logger
import dev.prefork.log.warn
import dev.prefork.posix.Fds

private val logger = logger("dev.prefork.supervisor.Upgrade")

/**
 * Upgrading the supervisor itself, as unicorn and nginx do on SIGUSR2: the old supervisor
 * starts a new one from its own command line (so the new one runs the code now on disk),
 * handing it the listening sockets as inherited fds; the new one's `bindSockets` calls take
 * them, in order, instead of binding, and it starts its own workers on them. Once they serve,
 * it says so on a pipe, and the old one stops its workers gracefully and exits. Both accept
 * from the same sockets meanwhile, so no connection is refused or lost.
 *
 * What the old supervisor tells the new one:
 * - `PREFORK_UPGRADE_READY`: `pipe:[inode]` of its fd 3, the write end of the pipe on which it
 *   says `ready`; a process whose fd 3 is not that pipe (a child that inherited the variables)
 *   is no successor;
 * - `PREFORK_UPGRADE_SOCKETS`: the socket groups, encoded as for workers, fds from 4 up.
 *
 * Workers and children never see these variables (every `PREFORK_` one is kept from them).
 */
internal object Upgrade {
    const val READY = "${WORKER_VARIABLE_PREFIX}UPGRADE_READY"
    const val SOCKETS = "${WORKER_VARIABLE_PREFIX}UPGRADE_SOCKETS"
    const val READY_FD = 3
    const val FIRST_SOCKET_FD = 4

    /** In a supervisor started by an upgrade: the socket groups handed over, and whether the ready pipe is still open. */
    private class Successor(val groups: List<WorkerEnvironment.Group>) {
        var taken = 0
        var told = false
    }

    private val successor: Successor? by lazy {
        val expected = System.getenv(READY) ?: return@lazy null
        if (WorkerEnvironment.fdTarget(READY_FD) != expected) return@lazy null
        Successor(WorkerEnvironment.decode(System.getenv(SOCKETS) ?: "")).also {
            logger.info { "upgrade: this supervisor takes over ${it.groups.size} socket groups from the one that started it" }
        }
    }

    /** Whether this supervisor was started by an upgrade. */
    val isSuccessor: Boolean get() = successor != null

    /** The next socket group handed over, for the next `bindSockets` call; null once there are none (or this is no successor). */
    @Synchronized
    fun nextGroup(): Pair<Int, WorkerEnvironment.Group>? {
        val found = successor ?: return null
        if (found.taken >= found.groups.size) return null
        val index = found.taken++
        return index to found.groups[index]
    }

    /** Tells the old supervisor this one serves (its workers are ready), once. */
    @Synchronized
    fun sayReady() {
        val found = successor ?: return
        if (found.told) return
        found.told = true
        try {
            Fds.writeSmall(READY_FD, READY_LINE, "the upgrade's ready pipe")
        } catch (e: java.io.IOException) {
            logger.warn { "upgrade: cannot tell the old supervisor this one is ready ($e); it keeps serving too" }
        } finally {
            Fds.closeQuietly(READY_FD)
        }
    }

    private val READY_LINE = "ready\n".toByteArray()
}
