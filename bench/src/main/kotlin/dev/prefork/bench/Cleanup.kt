package dev.prefork.bench

import dev.prefork.Subprocess

/*
 * Every benchmark calls these in a finally block, so no child outlives a failed run.
 * They cost nothing on the normal path: by then each child has been reaped.
 */

/** SIGKILL, then wait until it is reaped and its pipes are closed. */
internal fun Subprocess.killIfRunning() {
    if (returnCode != null) return
    kill()
    close()
}

internal fun Process.killIfRunning() {
    if (!isAlive) return
    destroyForcibly()
    waitFor()
}
