package dev.prefork.supervisor

import dev.prefork.WORKER_VARIABLE_PREFIX

/**
 * What a supervisor tells a worker JVM, in environment variables (the only channel that
 * survives exec and costs the worker nothing to read):
 *
 * - `PREFORK_TASK_ID`: the worker's id; absent for a spare, which has
 * - `PREFORK_SPARE`: the fd of the read end of its assignment pipe, on which the supervisor
 *   writes the id the spare takes over (`"3\n"`);
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
 * - `PREFORK_INHERITED_CHANNEL`: `1` when fd 0 is the first shared listening socket;
 * - `PREFORK_HEARTBEAT_MS`: with a worker timeout, how often the worker says `alive` on its ready pipe.
 */
internal object WorkerEnvironment {
    const val TASK_ID = "${WORKER_VARIABLE_PREFIX}TASK_ID"
    const val SPARE = "${WORKER_VARIABLE_PREFIX}SPARE"
    const val CONTROL_FDS = "${WORKER_VARIABLE_PREFIX}CONTROL_FDS"
    const val SOCKETS = "${WORKER_VARIABLE_PREFIX}SOCKETS"
    const val READY = "${WORKER_VARIABLE_PREFIX}READY"
    const val DRAIN_MS = "${WORKER_VARIABLE_PREFIX}DRAIN_MS"
    const val INHERITED_CHANNEL = "${WORKER_VARIABLE_PREFIX}INHERITED_CHANNEL"
    const val HEARTBEAT_MS = "${WORKER_VARIABLE_PREFIX}HEARTBEAT_MS"

    /** `pipe:[inode]` of the watch pipe: proves fd 3 is really this supervisor's pipe, not an inherited stranger. */
    const val WATCH_PIPE = "${WORKER_VARIABLE_PREFIX}WATCH_PIPE"

    /** What `/proc/self/fd/N` links to (`pipe:[123]`, `socket:[456]`, a path), or null. */
    fun fdTarget(fd: Int): String? = try {
        java.nio.file.Files.readSymbolicLink(java.nio.file.Path.of("/proc/self/fd/" + fd)).toString()
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

    fun decode(text: String): List<Group> {
        val groups = ArrayList<Group>()
        if (text.isEmpty()) return groups
        for (entry in split(text, ';')) {
            val body = entry.substring(1)
            when (entry[0]) {
                's' -> {
                    val sockets = ArrayList<Pair<Int, Boolean>>()
                    for (socket in split(body, ',')) {
                        val fdAndFamily = split(socket, '/')
                        sockets.add(Pair(Integer.parseInt(fdAndFamily[0]), fdAndFamily[1] == "6"))
                    }
                    groups.add(Group.Shared(sockets))
                }
                'r' -> groups.add(Group.ReusePort(Integer.parseInt(body)))
                else -> throw IllegalStateException("bad $SOCKETS entry \"$entry\"")
            }
        }
        return groups
    }

    /*
     * A worker reads its environment on its start-up path, where every class counts: these two
     * use `String` members and `java.util` only, not Kotlin's string and collection extensions,
     * whose facade classes (a dozen each) would load and be verified first.
     */

    /** [text] split at every [separator]. */
    fun split(text: String, separator: Char): List<String> {
        val parts = ArrayList<String>()
        var start = 0
        for (i in 0 until text.length) {
            if (text[i] == separator) {
                parts.add(text.substring(start, i))
                start = i + 1
            }
        }
        parts.add(text.substring(start))
        return parts
    }

    /** Whether an fd's [target] (see [fdTarget]) is a pipe. */
    fun isPipe(target: String?): Boolean = target != null && target.length > 5 && target.substring(0, 5) == "pipe:"

    /** [text] as a decimal int, or null when it is absent or not one. */
    fun intOrNull(text: String?): Int? = try {
        if (text == null) null else Integer.parseInt(text)
    } catch (e: NumberFormatException) {
        null
    }
}
