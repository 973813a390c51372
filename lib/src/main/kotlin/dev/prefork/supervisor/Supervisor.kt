package dev.prefork.supervisor

import dev.prefork.ExitStatus
import dev.prefork.ForkOptions
import dev.prefork.Subprocess
import dev.prefork.TooManyRestartsException
import dev.prefork.WORKER_VARIABLE_PREFIX
import dev.prefork.WorkerEvent
import dev.prefork.posix.Fds
import io.github.oshai.kotlinlogging.KotlinLogging
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.ExperimentalCoroutinesApi
import kotlinx.coroutines.Job
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.cancelChildren
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeoutOrNull
import sun.misc.Signal
import java.io.EOFException
import java.io.IOException
import java.nio.channels.ServerSocketChannel
import kotlin.system.exitProcess

private val logger = KotlinLogging.logger {}

/**
 * The supervisor side of `forkProcesses`: starts the workers, restarts the ones that fail as
 * [RestartPolicy] decides, and handles SIGTERM/SIGINT (graceful stop) and SIGHUP (rolling
 * restart). All of its state lives on one coroutine at a time (a dispatcher limited to one
 * thread), so the event loop, the rolling restart and the timers never race.
 *
 * Every worker holds the read end of one pipe whose write end only this process has: when the
 * supervisor dies, even by SIGKILL, each worker reads end-of-file and exits.
 */
internal class Supervisor(
    private val options: ForkOptions,
    private val count: Int,
    private val command: List<String>,
    socketGroups: List<Pair<List<ServerSocketChannel>, Boolean>>,
) {
    private val policy = RestartPolicy(
        maxRestarts = options.maxRestarts,
        restartWindowNanos = options.restartWindow?.toNanos(),
        backoffInitialNanos = options.backoffInitial.toNanos(),
        backoffMaxNanos = options.backoffMax.toNanos(),
    )
    private val events = Channel<Event>(Channel.UNLIMITED)
    private val current = HashMap<Int, Child>()
    private val leaving = HashSet<Child>()
    private var stopping = false
    private var rolling: Job? = null

    /** The supervisor's own scope: every worker's watchers live here, whoever started the worker. */
    private lateinit var scope: CoroutineScope


    /** Child fds from 5 up, in group order (fd 3: watch pipe, fd 4: ready pipe). */
    private val passedSockets = socketGroups.filter { !it.second }.flatMap { it.first }.associateWith(SocketHandoff::fdOf)
    private val parentSocketFds = passedSockets.values.map { it.fd }
    private val encodedGroups: String = run {
        var next = FIRST_SOCKET_FD
        WorkerEnvironment.encode(
            socketGroups.map { (channels, reusePort) ->
                if (reusePort) {
                    WorkerEnvironment.Group.ReusePort((channels.first().localAddress as java.net.InetSocketAddress).port)
                } else {
                    WorkerEnvironment.Group.Shared(channels.map { next++ to passedSockets.getValue(it).inet6 })
                }
            },
        )
    }
    private val reusePortChannels = socketGroups.filter { it.second }.flatMap { it.first }
    private val sharedChannels = passedSockets.keys

    /** With [ForkOptions.inheritedChannel], the first shared socket becomes every worker's fd 0. */
    private val inheritedFd: Int? = if (options.inheritedChannel) {
        checkNotNull(parentSocketFds.firstOrNull()) {
            "ForkOptions.inheritedChannel(true) needs a socket bound with bindSockets (reusePort = false) before forkProcesses"
        }
    } else {
        null
    }

    /** A worker waits this long for its accepted connections on SIGTERM: never past the SIGKILL that follows. */
    private val drainMillis = minOf(options.drainTimeout, options.gracefulTimeout).toMillis()

    /**
     * The supervisor-alive pipe: workers get the read end as fd 3; this process keeps the write
     * end until it dies. Opened last, after every step of set-up that can fail.
     */
    private val watchPipe = Fds.pipe()
    private val watchPipeTarget = checkNotNull(WorkerEnvironment.fdTarget(watchPipe[0])) { "cannot read /proc/self/fd/${watchPipe[0]}" }

    private class Child(val id: Int, val process: Subprocess, val startedNanos: Long) {
        /** True once the worker said it is serving; false if it exited first. */
        val ready = CompletableDeferred<Boolean>()
        val pid: Long get() = process.pid

        /** During a rolling restart, the worker this one replaces until it said it is ready. */
        var replacing: Child? = null
    }

    private sealed interface Event {
        class Exited(val worker: Child, val status: ExitStatus) : Event
        class StartDue(val id: Int) : Event
        class Signaled(val name: String) : Event
    }

    @OptIn(ExperimentalCoroutinesApi::class)
    suspend fun run(): Nothing = withContext(Dispatchers.Default.limitedParallelism(1)) {
        coroutineScope {
            scope = this
            val previousHandlers = installSignalHandlers()
            logger.info { "Starting $count processes" }
            var state = policy.initial(count)
            try {
                for (id in 0 until count) start(id)
                // With SO_REUSEPORT every worker has its own socket; the supervisor's would only steal connections.
                reusePortChannels.forEach { it.close() }
                for (event in events) {
                    when (event) {
                        is Event.Exited -> state = exited(event, state) ?: continue
                        is Event.StartDue -> if (!stopping) start(event.id)
                        is Event.Signaled -> when (event.name) {
                            "HUP" -> if (rolling?.isActive != true) rolling = launch { rollingRestart() }
                            else -> {
                                logger.info { "SIG${event.name} received, stopping ${current.size} workers" }
                                stopAll()
                                exitProcess(0)
                            }
                        }
                    }
                    if (state.done) {
                        coroutineContext.cancelChildren()
                        exitProcess(0)
                    }
                }
            } catch (e: Throwable) {
                withContext(NonCancellable) { stopAll() }
                throw e
            } finally {
                // Only reached on the way to an exception: give SIGTERM/SIGINT back to the JVM.
                previousHandlers.forEach { (signal, handler) -> Signal.handle(signal, handler) }
                Fds.closeQuietly(watchPipe[0])
                Fds.closeQuietly(watchPipe[1])
            }
            error("unreachable: the supervisor's event channel never closes")
        }
    }

    /**
     * SIGTERM/SIGINT (graceful stop) and SIGHUP (rolling restart) become events. Under `-Xrs`
     * the JVM refuses them: the supervisor then runs without those features and says so.
     */
    private fun installSignalHandlers(): Map<Signal, sun.misc.SignalHandler> =
        listOf("TERM", "INT", "HUP").mapNotNull { name ->
            val signal = Signal(name)
            try {
                val previous = Signal.handle(signal) { events.trySend(Event.Signaled(name)) }
                if (previous == sun.misc.SignalHandler.SIG_IGN) {
                    // The JVM keeps a shutdown signal ignored if it started that way (nohup, `&` in a script).
                    logger.warn { "SIG$name was ignored when this JVM started: no ${feature(name)} on it" }
                }
                signal to previous
            } catch (e: IllegalArgumentException) {
                logger.warn { "cannot handle SIG$name (${e.message}): no ${feature(name)} on it" }
                null
            }
        }.toMap()

    /** Applies the policy to one exit; null when the exit was of a worker already replaced. */
    private suspend fun exited(event: Event.Exited, state: SupervisorState): SupervisorState? {
        val worker = event.worker
        val status = event.status
        if (current[worker.id] !== worker) {
            leaving -= worker
            logger.info { "child ${worker.id} (pid ${worker.pid}) $status, replaced" }
            options.listener?.onEvent(WorkerEvent.Exited(worker.id, worker.pid, status, restarting = false))
            return null
        }
        current.remove(worker.id)
        if (stopping) return null
        val replaced = worker.replacing
        if (replaced != null && replaced.process.returnCode == null) {
            // A replacement that dies before it is ready costs no restart: the old worker stays.
            logger.error { "child ${worker.id}: replacement (pid ${worker.pid}) $status before it was ready, keeping pid ${replaced.pid}" }
            options.listener?.onEvent(WorkerEvent.Exited(worker.id, worker.pid, status, restarting = false))
            leaving -= replaced
            current[worker.id] = replaced
            return null
        }
        val now = System.nanoTime()
        val (decision, next) = policy.onExit(state, worker.id, status.returnCode == 0, now - worker.startedNanos, now)
        val what = "child ${worker.id} (pid ${worker.pid})"
        when (decision) {
            is Decision.Restart -> {
                val how = if (status.signal != null) "killed by signal ${status.signal}" else "exited with status ${status.exitCode}"
                logger.warn { "$what $how, restarting" }
                options.listener?.onEvent(WorkerEvent.Exited(worker.id, worker.pid, status, restarting = true))
                if (decision.delayNanos == 0L) {
                    start(worker.id)
                } else {
                    scope.launch {
                        delay(decision.delayNanos / 1_000_000)
                        events.send(Event.StartDue(worker.id))
                    }
                }
            }
            is Decision.Retire -> {
                logger.info { "$what exited normally" }
                options.listener?.onEvent(WorkerEvent.Exited(worker.id, worker.pid, status, restarting = false))
            }
            Decision.GiveUp -> {
                logger.error { "$what $status; too many child restarts, giving up" }
                options.listener?.onEvent(WorkerEvent.Exited(worker.id, worker.pid, status, restarting = false))
                throw TooManyRestartsException()
            }
        }
        return next
    }

    private fun start(id: Int): Child {
        val environment = System.getenv().filterKeys { !it.startsWith(WORKER_VARIABLE_PREFIX) } + mapOf(
            WorkerEnvironment.TASK_ID to id.toString(),
            WorkerEnvironment.CONTROL_FDS to "$WATCH_FD,$READY_FD",
            WorkerEnvironment.SOCKETS to encodedGroups,
            WorkerEnvironment.WATCH_PIPE to watchPipeTarget,
            WorkerEnvironment.DRAIN_MS to drainMillis.toString(),
        ) + listOfNotNull(
            (WorkerEnvironment.READY to WorkerRuntime.EXPLICIT).takeIf { options.explicitReady },
            (WorkerEnvironment.INHERITED_CHANNEL to "1").takeIf { inheritedFd != null },
        )
        // A process group of its own: a terminal's Ctrl-C reaches only the supervisor, which then stops the workers in order.
        val builder = Subprocess.builder(command).env(environment).newProcessGroup().passFd(watchPipe[0]).readPipe()
        parentSocketFds.forEach { builder.passFd(it) }
        inheritedFd?.let { builder.stdinFrom(it) }
        val process = builder.startDetached()
        val worker = Child(id, process, System.nanoTime())
        current[id] = worker
        options.listener?.onEvent(WorkerEvent.Started(id, process.pid))
        scope.launch {
            try {
                process.extraReaders[0].readUntil(READY)
            } catch (e: EOFException) {
                worker.ready.complete(false) // exited before it was ready; the exit event tells the rest
                return@launch
            }
            worker.ready.complete(true)
            logger.debug { "child $id (pid ${process.pid}) ready" }
            options.listener?.onEvent(WorkerEvent.Ready(id, process.pid))
        }
        scope.launch {
            process.waitForExit(raiseError = false)
            events.send(Event.Exited(worker, process.exitStatus!!))
        }
        return worker
    }

    /**
     * SIGHUP: replaces workers one at a time. The old worker gets SIGTERM only once its
     * replacement said it is ready (serving, with [ForkOptions.explicitReady]; its sockets
     * adopted otherwise), so with the shared accept queue held open by this process no
     * connection is ever refused.
     */
    private suspend fun rollingRestart() {
        logger.info { "SIGHUP received, replacing ${current.size} workers one at a time" }
        for (id in current.keys.sorted()) {
            if (stopping) return
            val old = current[id] ?: continue
            val fresh = try {
                start(id)
            } catch (e: IOException) {
                logger.error(e) { "rolling restart stopped: cannot start a replacement for child $id" }
                return
            }
            fresh.replacing = old
            leaving += old
            val ready = withTimeoutOrNull(options.readyTimeout.toMillis()) { fresh.ready.await() } == true
            if (current[id] !== fresh || fresh.process.returnCode != null) {
                // It died before it was ready; the exit handler put the old worker back.
                logger.error { "rolling restart stopped at child $id" }
                return
            }
            if (!ready) {
                logger.error {
                    "rolling restart stopped: child $id's replacement (pid ${fresh.pid}) was not ready within " +
                        "${options.readyTimeout}; stopping it, pid ${old.pid} keeps serving"
                }
                fresh.replacing = null
                leaving -= old
                current[id] = old
                leaving += fresh
                stop(listOf(fresh))
                return
            }
            fresh.replacing = null
            stop(listOf(old))
        }
        logger.info { "rolling restart done" }
    }

    private suspend fun stopAll() {
        stopping = true
        rolling?.cancel()
        // New connections are refused from now on, rather than queued for workers that are leaving.
        sharedChannels.forEach { it.close() }
        stop(current.values + leaving)
    }

    /** SIGTERM, [ForkOptions.gracefulTimeout] to exit, then SIGKILL; returns once all are reaped. */
    private suspend fun stop(workers: Collection<Child>) {
        workers.forEach { it.process.terminate() }
        val inTime = withTimeoutOrNull(options.gracefulTimeout.toMillis()) {
            workers.forEach { it.process.waitForExit(raiseError = false) }
        }
        if (inTime == null) {
            workers.filter { it.process.returnCode == null }.forEach {
                logger.warn { "child ${it.id} (pid ${it.pid}) did not stop within ${options.gracefulTimeout}, killing it" }
                it.process.kill()
            }
            workers.forEach { it.process.waitForExit(raiseError = false) }
        }
    }

    private fun feature(signal: String) = if (signal == "HUP") "rolling restart" else "graceful stop"

    private companion object {
        const val WATCH_FD = 3
        const val READY_FD = 4
        const val FIRST_SOCKET_FD = 5
        val READY = "ready\n".toByteArray()
    }
}
