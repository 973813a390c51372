package dev.prefork.supervisor

import dev.prefork.ForkOptions
import dev.prefork.PipeReader
import dev.prefork.Subprocess
import dev.prefork.io.PipeSource
import dev.prefork.log.error
import dev.prefork.log.info
import dev.prefork.log.logger
import dev.prefork.posix.Fds
import java.io.EOFException
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeoutOrNull

private val logger = logger("dev.prefork.supervisor.Supervisor")

/**
 * The old supervisor's side of SIGUSR2 ([Upgrade] has the protocol and the new one's side):
 * starts a new supervisor from this JVM's command line with the listening sockets, and waits
 * until it says its workers serve. A new supervisor that exits, or is not ready within
 * [ForkOptions.readyTimeout], is stopped, and the old one keeps serving.
 */
internal class SupervisorUpgrade(private val options: ForkOptions, private val launcher: WorkerLauncher) {
    /** The new supervisor until it serves: a graceful stop meanwhile stops it too ([stopSuccessor]). */
    private var successor: Subprocess? = null

    /** The new supervisor's pid once it serves: the caller then stops its workers and exits. Null (logged why) otherwise. */
    suspend fun handOver(): Long? {
        if (ProcessHandle.current().pid() == 1L) {
            logger.error { "SIGUSR2: as PID 1 this supervisor cannot hand over (its container would end with it): no upgrade; SIGHUP replaces the workers" }
            return null
        }
        val pipe = Fds.pipe()
        val fresh = try {
            spawnSuccessor(pipe[1])
        } catch (e: Exception) { // the spawn's IOException, or this JVM's command line unreadable
            Fds.closeQuietly(pipe[0])
            logger.error(e) { "SIGUSR2: cannot start a new supervisor; this one keeps serving" }
            return null
        } finally {
            Fds.closeQuietly(pipe[1])
        }
        successor = fresh
        logger.info { "SIGUSR2: new supervisor (pid ${fresh.pid}) started from the command line; this one serves until its workers do" }
        val said = try {
            PipeReader(PipeSource(pipe[0], Subprocess.reactor, "the upgrade's ready pipe").also { it.start() }, "the upgrade's ready pipe")
        } catch (e: Exception) {
            Fds.closeQuietly(pipe[0])
            stopSuccessor()
            logger.error(e) { "SIGUSR2: cannot read the new supervisor's ready pipe; it is stopped, and this one keeps serving" }
            return null
        }
        val ready = try {
            withTimeoutOrNull(options.readyTimeout.toMillis()) {
                try {
                    said.readUntil(NEWLINE).contentEquals(READY_LINE)
                } catch (e: EOFException) {
                    false
                }
            }
        } finally {
            said.close()
        }
        if (ready != true) {
            val why = if (ready == null) "was not ready within ${options.readyTimeout}" else "exited before it was ready"
            stopSuccessor()
            logger.error { "SIGUSR2: the new supervisor (pid ${fresh.pid}) $why (${fresh.exitStatus}); this one keeps serving" }
            return null
        }
        successor = null
        return fresh.pid
    }

    /** SIGTERM to a new supervisor that is not serving yet, SIGKILL after the graceful timeout; its workers follow it. */
    suspend fun stopSuccessor() {
        val fresh = successor ?: return
        successor = null
        withContext(NonCancellable) {
            runCatching { fresh.terminate() }
            if (withTimeoutOrNull(options.gracefulTimeout.toMillis()) { fresh.waitForExit(raiseError = false) } == null) {
                runCatching { fresh.kill() }
                fresh.waitForExit(raiseError = false)
            }
        }
    }

    /** The new supervisor: this JVM's command line, [readyFd] as its fd 3, the shared sockets from fd 4 up. */
    private fun spawnSuccessor(readyFd: Int): Subprocess {
        // NOTIFY_SOCKET and WATCHDOG_USEC stay: the new supervisor is the service's main process once it says MAINPID=.
        val environment = launcher.inheritedEnvironment(dropping = listOf("WATCHDOG_PID")) + mapOf(
            Upgrade.SOCKETS to launcher.successorGroups,
            Upgrade.READY to checkNotNull(WorkerEnvironment.fdTarget(readyFd)) { "cannot read /proc/self/fd/$readyFd" },
        )
        val builder = Subprocess.builder(WorkerCommand.ofThisJvm()).env(environment).passFd(readyFd)
        launcher.parentSocketFds.forEach { builder.passFd(it) }
        return builder.startDetached()
    }

    private companion object {
        val NEWLINE = "\n".toByteArray()
        val READY_LINE = "ready\n".toByteArray()
    }
}
