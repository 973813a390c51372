package dev.prefork.supervisor

import dev.prefork.log.logger
import dev.prefork.log.warn
import java.io.IOException
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.StandardCopyOption
import java.time.Instant
import java.time.temporal.ChronoUnit

private val logger = logger("dev.prefork.supervisor.StatusFile")

/**
 * [dev.prefork.ForkOptions.statusFile]: the supervisor's state as one line of JSON, replaced
 * whole at each change (written beside the file, then renamed over it), so a probe never
 * reads half of one. A failed write is logged once; the supervisor serves on regardless.
 */
internal class StatusFile(private val file: Path) {
    private val scratch = file.resolveSibling(".${file.fileName}.tmp")
    private var failed = false

    /**
     * The supervisor [pid] in [state] (starting, serving, reloading, stopping, gave-up): its
     * [workers], how many are [serving], how many ids are [restarting] (no worker running), its
     * [spares], and when this was written, to the second.
     */
    fun write(pid: Long, state: String, workers: Int, serving: Int, restarting: Int, spares: Int) = write(
        "{\"pid\":$pid,\"state\":\"$state\",\"workers\":$workers,\"serving\":$serving," +
            "\"restarting\":$restarting,\"spares\":$spares,\"updated\":\"${Instant.now().truncatedTo(ChronoUnit.SECONDS)}\"}",
    )

    private fun write(json: String) {
        try {
            Files.writeString(scratch, json + "\n")
            Files.move(scratch, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING)
        } catch (e: IOException) {
            if (!failed) logger.warn { "cannot write the status file $file ($e); later failures are not reported" }
            failed = true
        }
    }

    fun delete() {
        try {
            Files.deleteIfExists(file)
            Files.deleteIfExists(scratch)
        } catch (e: IOException) {
            logger.warn { "cannot delete the status file $file ($e)" }
        }
    }
}
