package dev.prefork.supervisor

import dev.prefork.WORKER_VARIABLE_PREFIX

/**
 * What a supervisor tells a worker JVM, in environment variables (the only channel that
 * survives exec and costs the worker nothing to read):
 *
 * - `PREFORK_TASK_ID`: the worker's id;
 * - `PREFORK_CONTROL_FDS`: `watch,ready` — the read end of a pipe whose end-of-file means the
 *   supervisor died, and the write end of a pipe on which the worker says it is ready;
 * - `PREFORK_WATCH_PIPE`: `pipe:[inode]` of the watch pipe; a process whose fd 3 is not that
 *   pipe is no worker, whatever else its environment says (a worker's own children inherit
 *   the variables when a launcher other than prefork's starts them);
 * - `PREFORK_SOCKETS`: one entry per `bindSockets` call the supervisor made before forking,
 *   `;`-separated: `s` plus `fd/family` pairs for shared sockets (`s5/4,6/6`), or `r` plus the
 *   port for a SO_REUSEPORT group that each worker binds itself (`r8888`);
 * - `PREFORK_READY`: `explicit` when the worker is ready only once it calls `Worker.ready()`;
 * - `PREFORK_DRAIN_MS`: how long a worker that got SIGTERM waits for its accepted connections;
 * - `PREFORK_INHERITED_CHANNEL`: `1` when fd 0 is the first shared listening socket.
 */
internal object WorkerEnvironment {
    const val TASK_ID = "${WORKER_VARIABLE_PREFIX}TASK_ID"
    const val CONTROL_FDS = "${WORKER_VARIABLE_PREFIX}CONTROL_FDS"
    const val SOCKETS = "${WORKER_VARIABLE_PREFIX}SOCKETS"
    const val READY = "${WORKER_VARIABLE_PREFIX}READY"
    const val DRAIN_MS = "${WORKER_VARIABLE_PREFIX}DRAIN_MS"
    const val INHERITED_CHANNEL = "${WORKER_VARIABLE_PREFIX}INHERITED_CHANNEL"

    /** `pipe:[inode]` of the watch pipe: proves fd 3 is really this supervisor's pipe, not an inherited stranger. */
    const val WATCH_PIPE = "${WORKER_VARIABLE_PREFIX}WATCH_PIPE"

    /** What `/proc/self/fd/N` links to (`pipe:[123]`, `socket:[456]`, a path), or null. */
    fun fdTarget(fd: Int): String? = try {
        java.nio.file.Files.readSymbolicLink(java.nio.file.Path.of("/proc/self/fd/$fd")).toString()
    } catch (e: java.io.IOException) {
        null
    }

    /** One `bindSockets` call as the worker must replay it. */
    sealed interface Group {
        /** Inherited listening sockets: child fd and whether the socket is IPv6. */
        data class Shared(val sockets: List<Pair<Int, Boolean>>) : Group
        data class ReusePort(val port: Int) : Group
    }

    fun encode(groups: List<Group>): String = groups.joinToString(";") { group ->
        when (group) {
            is Group.Shared -> "s" + group.sockets.joinToString(",") { (fd, v6) -> "$fd/${if (v6) 6 else 4}" }
            is Group.ReusePort -> "r${group.port}"
        }
    }

    fun decode(text: String): List<Group> = if (text.isEmpty()) emptyList() else text.split(";").map { entry ->
        when (entry[0]) {
            's' -> Group.Shared(
                entry.substring(1).split(",").map {
                    val (fd, family) = it.split("/")
                    fd.toInt() to (family == "6")
                },
            )
            'r' -> Group.ReusePort(entry.substring(1).toInt())
            else -> throw IllegalStateException("bad $SOCKETS entry \"$entry\"")
        }
    }
}
