package dev.prefork.supervisor

import dev.prefork.ForkOptions
import dev.prefork.GiveUpReason
import dev.prefork.RestartDecision
import dev.prefork.RestartPolicy
import dev.prefork.RestartState
import dev.prefork.Subprocess
import dev.prefork.TooManyRestartsException
import dev.prefork.WorkerEvent
import dev.prefork.WorkerStatus
import dev.prefork.log.debug
import dev.prefork.log.error
import dev.prefork.log.info
import dev.prefork.log.logger
import dev.prefork.log.warn
import dev.prefork.posix.Linux
import java.io.EOFException
import java.io.IOException
import java.nio.channels.ServerSocketChannel
import java.time.Duration
import java.util.concurrent.ConcurrentHashMap
import sun.misc.Signal
import kotlin.system.exitProcess
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

private val logger = logger("dev.prefork.supervisor.Supervisor")

/**
 * The supervisor side of `forkProcesses`: starts the workers, restarts the ones that fail as
 * [RestartPolicy] decides, and handles SIGTERM/SIGINT (graceful stop) and SIGHUP (rolling
 * restart). All of its state lives on one coroutine at a time (a dispatcher limited to one
 * thread), so the event loop, the rolling restart and the timers never race.
 *
 * Every worker holds the read end of one pipe whose write end only this process has: when the
 * supervisor dies, even by SIGKILL, each worker reads end-of-file and exits.
 *
 * With [ForkOptions.spareWorkers], spare JVMs wait, without an id, in their `forkProcesses`;
 * a worker to be restarted is replaced by the oldest spare (its id written on the spare's
 * assignment pipe), and a new spare is started behind it ([Spares]).
 *
 * What is here, and why in one file: the event loop and what reads and writes the pool by id
 * on its thread (exits and the restart policy's decisions, rolling restarts and recycling,
 * resizing, stopping, the status it reports). The rest is in the files beside it:
 * [WorkerLauncher] (how a worker starts), [Spares], [WorkerLimits] (heartbeats, memory, age),
 * [SupervisorUpgrade] (SIGUSR2), [StatusFile], [WorkerCpus].
 */
internal class Supervisor(
    private val options: ForkOptions,
    /** How many workers there are to be: [ForkOptions.numProcesses], then changed by SIGTTIN/SIGTTOU. */
    private var count: Int,
    private val command: List<String>,
    socketGroups: List<Pair<List<ServerSocketChannel>, Boolean>>,
) {
    private val policy = RestartPolicy.of(options)
    private val events = Channel<SupervisorEvent>(Channel.UNLIMITED)
    /** The pool by id; concurrent only so that [workerStatus] can read it from any thread. */
    private val current = ConcurrentHashMap<Int, Child>()

    /** Restarts per id over the supervisor's life (for [workerStatus]); read from any thread too. */
    private val restartsById = ConcurrentHashMap<Int, Int>()
    private val leaving = HashSet<Child>()

    /**
     * A spare or a training run binds its own SO_REUSEPORT sockets when it runs `bindSockets`,
     * before `forkProcesses`, and the kernel would hand it connections it never accepts.
     */
    private val reusePort = socketGroups.any { it.second }

    private val spareCount = if (reusePort && options.spareWorkers > 0) {
        logger.warn { "spareWorkers(${options.spareWorkers}) is off: a spare would hold SO_REUSEPORT sockets it does not accept on" }
        0
    } else {
        options.spareWorkers
    }

    /** The class-data archive workers start from, or null; made anew on SIGHUP, when the jars may have changed. */
    private var archive: StartupArchive? = when {
        !options.startupArchive || options.workerCommand != null -> null
        reusePort -> {
            logger.info { "start-up archive: off, its training run would hold SO_REUSEPORT sockets it does not accept on" }
            null
        }
        else -> StartupArchive.of(command, options.startupArchiveDirectory)
    }

    /**
     * Each worker's share of the CPUs ([ForkOptions.cpuShare], [ForkOptions.pinWorkers]); null:
     * none to give. Made when the supervisor runs: reading this process's CPUs loads the C binding.
     */
    private val cpus: WorkerCpus? by lazy { WorkerCpus.of(options, command, System.getenv()) }

    private var stopping = false
    private var rolling: Job? = null

    /** The replacement of a worker past [ForkOptions.maxWorkerRss] or [ForkOptions.maxWorkerAge], while it runs: one at a time. */
    private var recycling: Job? = null

    /** SIGUSR2's new supervisor while it starts; [handedOver] once it serves and this one is on its way out. */
    private var upgrade: Job? = null
    private var handedOver = false

    private val ownPid = ProcessHandle.current().pid()

    /** The supervisor's own scope: every worker's watchers live here, whoever started the worker. */
    private lateinit var scope: CoroutineScope


    private val reusePortChannels = socketGroups.filter { it.second }.flatMap { it.first }

    /** systemd's notification socket, when this supervisor runs as a `Type=notify` service. */
    private val systemd: SystemdNotify? = SystemdNotify.fromEnvironment()

    /** [ForkOptions.statusFile], and the state it shows: starting, serving, reloading, stopping, gave-up. */
    private val statusFile: StatusFile? = options.statusFile?.let(::StatusFile)
    private var phase = "starting"

    /** Heartbeats, memory and age: which workers are past them. */
    private val limits = WorkerLimits(options)

    /** How workers are started: their fds, environment and the supervisor-alive pipe, opened last, after every step of set-up that can fail. */
    private val launcher = WorkerLauncher(options, socketGroups, limits.heartbeatMillis)

    /** The spares and the start-up archive's training run. */
    private val spares = Spares(
        options,
        spareCount,
        launch = { assignFd, training -> spawn(mapOf(WorkerEnvironment.SPARE to launcher.spareAssignFd.toString()), assignFd, training) },
        watch = ::watch,
        later = ::later,
    )

    /** SIGUSR2's side in this supervisor. */
    private val upgrader = SupervisorUpgrade(options, launcher)

    @OptIn(ExperimentalCoroutinesApi::class)
    suspend fun run(): Nothing = withContext(Dispatchers.Default.limitedParallelism(1)) {
        coroutineScope {
            scope = this
            val previousHandlers = installSignalHandlers()
            running = this@Supervisor
            logger.info { "Starting $count processes" }
            cpus?.let { logger.info { it.describe(count) } }
            notify("STATUS=starting $count workers")
            if (ownPid == 1L) scope.launch { OrphanReaper.run() }
            systemd?.watchdogMillis?.let { every ->
                scope.launch {
                    while (true) {
                        events.send(SupervisorEvent.Watchdog)
                        delay(every)
                    }
                }
            }
            limits.checkEveryMillis?.let { every ->
                scope.launch {
                    while (true) {
                        delay(every)
                        events.send(SupervisorEvent.Check)
                    }
                }
            }
            var state = policy.initial(count)
            try {
                archive?.let {
                    if (it.ready) logger.info { "start-up archive ${it.file}: workers map it" }
                    if (!it.ready && !it.needsTraining) logger.info { "start-up archive: none, an earlier training for ${it.file} wrote none" }
                }
                for (id in 0 until count) start(id)
                // Spares and the training run once the first workers are up: they must not slow the service's own start.
                val first = current.values.toList()
                scope.launch {
                    first.forEach { it.ready.await() }
                    events.send(SupervisorEvent.FirstReady)
                }
                // With SO_REUSEPORT every worker has its own socket; the supervisor's would only steal connections.
                reusePortChannels.forEach { it.close() }
                for (event in events) {
                    when (event) {
                        is SupervisorEvent.Exited -> state = exited(event, state) ?: continue
                        // A restart due for an id that SIGTTOU removed, or that SIGTTIN has started again since, is void.
                        is SupervisorEvent.StartDue -> if (!stopping && event.id < count && current[event.id] == null) replace(event.id)
                        SupervisorEvent.SpareDue -> if (!stopping && spares.size < spares.wanted) spares.start()
                        SupervisorEvent.FirstReady -> if (!stopping) {
                            phase = "serving"
                            if (Upgrade.isSuccessor) {
                                // systemd follows the new main process (NotifyAccess=all) from this datagram on.
                                notify("MAINPID=$ownPid", "READY=1", status())
                                Upgrade.sayReady()
                            } else {
                                notify("READY=1", status())
                            }
                            spares.fill()
                            if (archive?.needsTraining == true) spares.train(archive)
                        }
                        is SupervisorEvent.TrainingTimedOut -> if (spares.trainer === event.trainer) {
                            logger.warn { "start-up archive: the training JVM (pid ${event.trainer.pid}) did not reach forkProcesses within ${options.readyTimeout}; stopping it" }
                            event.trainer.process.terminate()
                        }
                        SupervisorEvent.Watchdog -> if (!handedOver) systemd?.send("WATCHDOG=1")
                        SupervisorEvent.Check -> if (!stopping) {
                            val now = System.nanoTime()
                            limits.silent(current.values, now).forEach { (worker, silent) -> timeOut(worker, silent) }
                            checkRecycling(now)
                        }
                        is SupervisorEvent.Resize -> if (!stopping) state = if (event.by > 0) addWorker(state) else removeWorker(state)
                        is SupervisorEvent.Signaled -> when (event.name) {
                            "HUP" -> if (rolling?.isActive != true) {
                                val recycle = recycling
                                rolling = launch {
                                    recycle?.join() // one replacement at a time: the recycled worker's first
                                    rollingRestart()
                                }
                            }
                            "USR1" -> logStatus()
                            "TTIN" -> if (!stopping) state = addWorker(state)
                            "TTOU" -> if (!stopping) state = removeWorker(state)
                            "USR2" -> if (upgrade?.isActive == true) {
                                logger.warn { "SIGUSR2: an upgrade is already under way" }
                            } else if (!stopping) {
                                upgrade = launch {
                                    upgrader.handOver()?.let { pid ->
                                        logger.info { "SIGUSR2: the new supervisor (pid $pid) serves; stopping this one's ${current.size} workers" }
                                        handedOver = true
                                        stopAll()
                                        exitProcess(0)
                                    }
                                }
                            }
                            else -> {
                                logger.info { "SIG${event.name} received, stopping ${current.size} workers" }
                                stopAll()
                                if (!handedOver) statusFile?.delete()
                                exitProcess(0)
                            }
                        }
                    }
                    if (state.done) {
                        stopping = true
                        stop(spares.takeAll())
                        archive?.abandonTraining()
                        coroutineContext.cancelChildren()
                        statusFile?.delete()
                        exitProcess(0)
                    }
                }
            } catch (e: Throwable) {
                withContext(NonCancellable) { stopAll() }
                throw e
            } finally {
                running = null
                // Only reached on the way to an exception: give SIGTERM/SIGINT back to the JVM.
                previousHandlers.forEach { (signal, handler) -> Signal.handle(signal, handler) }
                launcher.close()
            }
            error("unreachable: the supervisor's event channel never closes")
        }
    }

    /**
     * SIGTERM/SIGINT (graceful stop) and SIGHUP (rolling restart) become events. Under `-Xrs`
     * the JVM refuses them: the supervisor then runs without those features and says so.
     */
    private fun installSignalHandlers(): Map<Signal, sun.misc.SignalHandler> =
        listOf("TERM", "INT", "HUP", "USR1", "USR2", "TTIN", "TTOU").mapNotNull { name ->
            val signal = Signal(name)
            try {
                val previous = Signal.handle(signal) { events.trySend(SupervisorEvent.Signaled(name)) }
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
    private suspend fun exited(event: SupervisorEvent.Exited, state: RestartState): RestartState? {
        val worker = event.worker
        val status = event.status
        if (spares.trainerExited(worker)) {
            if (!stopping) archive?.trained(status.exitCode, (System.nanoTime() - worker.startedNanos) / 1_000_000)
            return null
        }
        if (worker.id == Child.SPARE) {
            leaving -= worker
            spares.exited(worker, status, stopping)
            return null
        }
        if (current[worker.id] !== worker) {
            leaving -= worker
            logger.info { "child ${worker.id} (pid ${worker.pid}) $status, " + if (worker.removed) "removed" else if (worker.recycled) "recycled" else "replaced" }
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
        // Workers serving now have their failed starts behind them, whether or not they exited since.
        val known = current.values.filter { it.serving && it.id in state.alive }.fold(state) { s, serving -> policy.onReady(s, serving.id) }
        // A worker stopped for a missed heartbeat failed, whatever its status says (a JVM that handled SIGTERM exits 143, or even 0).
        val (decision, next) = policy.onExit(known, worker.id, status.returnCode == 0 && !worker.timedOut, now - worker.startedNanos, now, worker.serving)
        val what = "child ${worker.id} (pid ${worker.pid})"
        when (decision) {
            is RestartDecision.Restart -> {
                // A spare takes over before anything else is done: every microsecond here is a client's wait.
                val spare = if (decision.delayNanos == 0L) handOver(worker.id) else null
                val how = (if (worker.timedOut) "timed out, " else "") +
                    if (status.signal != null) "killed by signal ${status.signal}" else "exited with status ${status.exitCode}"
                restartsById.merge(worker.id, 1, Int::plus)
                logger.warn { "$what $how, restarting" }
                options.listener?.onEvent(WorkerEvent.Exited(worker.id, worker.pid, status, restarting = true))
                when {
                    spare != null -> spares.tookOver(spare)
                    decision.delayNanos == 0L -> start(worker.id)
                    else -> later(decision.delayNanos / 1_000_000, SupervisorEvent.StartDue(worker.id))
                }
                notify(status())
            }
            is RestartDecision.Retire -> {
                logger.info { "$what exited normally" }
                options.listener?.onEvent(WorkerEvent.Exited(worker.id, worker.pid, status, restarting = false))
            }
            RestartDecision.GiveUp -> {
                val why = if (next.gaveUpReason == GiveUpReason.STARTS) {
                    "every worker failed its last ${policy.startFailureLimit} starts in a row (exited abnormally before it was ready: " +
                        "see its output above; ForkOptions.startFailureLimit)"
                } else {
                    "too many child restarts"
                }
                logger.error { "$what $status; $why, giving up" }
                phase = "gave-up"
                notify("STOPPING=1", "STATUS=$why, giving up")
                options.listener?.onEvent(WorkerEvent.Exited(worker.id, worker.pid, status, restarting = false))
                throw if (next.gaveUpReason == GiveUpReason.STARTS) TooManyRestartsException("Too many child restarts, giving up: $why") else TooManyRestartsException()
            }
        }
        return next
    }

    /** Worker [id] again: the oldest spare takes it over when there is one, a new JVM otherwise. */
    private fun replace(id: Int): Child = handOver(id)?.also(spares::tookOver) ?: start(id)

    /** Worker [id] to the oldest spare, which joins the pool; null when there is none. The caller then calls [Spares.tookOver]. */
    private fun handOver(id: Int): Child? = spares.handOver(id, limits.ageLimit())?.also { current[id] = it }

    private fun start(id: Int): Child {
        val process = spawn(mapOf(WorkerEnvironment.TASK_ID to id.toString()), assignFd = null, id = id)
        val worker = Child(id, process, System.nanoTime())
        worker.ageLimitNanos = limits.ageLimit()
        current[id] = worker
        options.listener?.onEvent(WorkerEvent.Started(id, process.pid))
        watch(worker)
        return worker
    }

    private fun later(millis: Long, event: SupervisorEvent) {
        scope.launch {
            delay(millis)
            events.send(event)
        }
    }

    /**
     * Starts a worker JVM with this supervisor's environment plus [variables]; [assignFd] is a
     * spare's assignment pipe; [training] makes it the start-up archive's training run; [id]
     * is the worker's id, null for a spare or the training run.
     */
    private fun spawn(variables: Map<String, String>, assignFd: Int?, training: Boolean = false, id: Int? = null): Subprocess {
        val archive = archive
        val archived = when {
            archive == null -> command
            training -> archive.trainerCommand(command)
            else -> archive.workerCommand(command)
        }
        // During SIGTTIN, worker [id] = count is started before the count grows.
        val workers = maxOf(count, (id ?: 0) + 1)
        return launcher.spawn(cpus?.command(archived, id, workers) ?: archived, variables, assignFd)
    }

    /** Follows [worker]'s lines on its ready pipe (`spare`, then `ready`) and its exit. */
    private fun watch(worker: Child) {
        val process = worker.process
        scope.launch {
            try {
                while (true) {
                    val line = process.extraReaders[0].readUntil(NEWLINE)
                    worker.heardNanos = System.nanoTime()
                    if (line.contentEquals(ALIVE_LINE)) continue
                    if (line.contentEquals(SPARE_LINE)) {
                        spares.waiting(worker)
                    } else if (line.contentEquals(READY_LINE) && !worker.serving) {
                        worker.serving = true
                        // Started anywhere, so that its start-up had every CPU; it serves on its own from now on.
                        cpus?.move(process.pid, worker.id, maxOf(count, worker.id + 1))
                        worker.ready.complete(true)
                        notify(status())
                        logger.debug { "child ${worker.id} (pid ${process.pid}) ready" }
                        options.listener?.onEvent(WorkerEvent.Ready(worker.id, process.pid))
                    }
                }
            } catch (e: EOFException) {
                // Heartbeats are read to the end; one that exited before it was ready: the exit event tells the rest.
                worker.ready.complete(false)
            }
        }
        scope.launch {
            process.waitForExit(raiseError = false)
            // Its last lines are in the pipe still: read them (ready or not) before the exit is judged, within a bound in case a child of its own holds the pipe.
            withTimeoutOrNull(READY_PIPE_DRAIN_MILLIS) { worker.ready.await() }
            events.send(SupervisorEvent.Exited(worker, process.exitStatus!!))
        }
    }

    /**
     * SIGHUP: replaces workers one at a time. The old worker gets SIGTERM only once its
     * replacement said it is ready (serving, with [ForkOptions.explicitReady]; its sockets
     * adopted otherwise), so with the shared accept queue held open by this process no
     * connection is ever refused.
     */
    private suspend fun rollingRestart() {
        logger.info { "SIGHUP received, replacing ${current.size} workers one at a time" + if (spares.size == 0) "" else " and ${spares.size} spares" }
        // MONOTONIC_USEC: systemd 253+ matches the READY=1 that ends a reload to this RELOADING=1 (Type=notify-reload).
        phase = "reloading"
        notify("RELOADING=1", "MONOTONIC_USEC=${System.nanoTime() / 1_000}", "STATUS=rolling restart of ${current.size} workers")
        try {
            replaceAll()
        } finally {
            if (!stopping) {
                phase = "serving"
                notify("READY=1", status())
            }
        }
    }

    private suspend fun replaceAll() {
        // Spares first: each worker below is then replaced by a spare that runs the new code, or a new JVM.
        // The jars may be new: workers started from now on must not map an archive of the old ones.
        archive = archive?.refreshed()
        val oldSpares = spares.renew()
        if (oldSpares.isNotEmpty()) {
            leaving += oldSpares // stopAll reaches them should a SIGTERM come meanwhile
            stop(oldSpares)
        }
        for (id in current.keys.sorted()) {
            if (stopping) return
            val old = current[id] ?: continue
            if (old.timedOut) continue // on its way out, and restarted as a failure
            if (!replaceServing(old, "rolling restart")) return
        }
        logger.info { "rolling restart done" }
        if (archive?.needsTraining == true && spares.trainer == null) spares.train(archive)
    }

    /**
     * Replaces [old] with a worker of its id, which must say it is ready before [old] gets
     * SIGTERM; returns once [old] exited, or false when the replacement failed ([old] then keeps
     * serving, and the log says why, naming [what] replaced it).
     */
    private suspend fun replaceServing(old: Child, what: String): Boolean {
        val id = old.id
        if (current[id] !== old) return false
        val fresh = try {
            replace(id)
        } catch (e: IOException) {
            logger.error(e) { "$what stopped: cannot start a replacement for child $id" }
            return false
        }
        fresh.replacing = old
        leaving += old
        val ready = withTimeoutOrNull(options.readyTimeout.toMillis()) { fresh.ready.await() } == true
        if (current[id] !== fresh || fresh.process.returnCode != null) {
            // It died before it was ready (the exit handler put the old worker back), or SIGTTOU removed both.
            logger.error { "$what stopped at child $id" }
            return false
        }
        if (!ready && old.process.returnCode != null) {
            // The old worker died meanwhile (its exit counted as replaced): the replacement is all this id has.
            logger.error { "$what: child $id's replacement (pid ${fresh.pid}) was not ready within ${options.readyTimeout}, and pid ${old.pid} is gone; keeping it" }
            fresh.replacing = null
            leaving -= old
            return false
        }
        if (!ready) {
            logger.error {
                "$what stopped: child $id's replacement (pid ${fresh.pid}) was not ready within " +
                    "${options.readyTimeout}; stopping it, pid ${old.pid} keeps serving"
            }
            fresh.replacing = null
            leaving -= old
            current[id] = old
            leaving += fresh
            stop(listOf(fresh))
            return false
        }
        fresh.replacing = null
        stop(listOf(old))
        return true
    }

    /**
     * A worker silent for [silent]: SIGTERM, with SIGCONT for a stopped JVM to act on it, then
     * SIGKILL after the graceful timeout; its exit is restarted as a failure.
     */
    private fun timeOut(worker: Child, silent: Duration) {
        worker.timedOut = true
        logger.warn { "child ${worker.id} (pid ${worker.pid}) timed out: no heartbeat for ${silent.toMillis()} ms (workerTimeout ${options.workerTimeout}); stopping it" }
        options.listener?.onEvent(WorkerEvent.TimedOut(worker.id, worker.pid, silent))
        scope.launch {
            runCatching { worker.process.terminate() }
            runCatching { worker.process.signal(Linux.SIGCONT) }
            stop(listOf(worker))
        }
    }

    /** Starts the replacement of a worker past its memory or age ([WorkerLimits]), unless a replacement runs already. */
    private fun checkRecycling(now: Long) {
        val busy = rolling?.isActive == true || recycling?.isActive == true
        val (worker, reason) = limits.dueForRecycling(current.values, now, busy) ?: return
        recycling = scope.launch { recycle(worker, reason) }
    }

    /** Replaces [old] as a rolling restart would; a failed try is tried again later ([WorkerLimits.recyclingFailed]). */
    private suspend fun recycle(old: Child, reason: String) {
        if (current[old.id] !== old) return // exited, or removed by SIGTTOU, since the check
        logger.info { "child ${old.id} (pid ${old.pid}) recycled: $reason; replacing it" }
        options.listener?.onEvent(WorkerEvent.Recycled(old.id, old.pid, reason))
        old.recycled = true
        val ranMillis = (System.nanoTime() - old.startedNanos) / 1_000_000
        if (!replaceServing(old, "recycling")) {
            limits.recyclingFailed(old)
            return
        }
        limits.recycled(old, ranMillis)
        notify(status())
    }

    /** SIGUSR1: the supervisor's state, then every worker's status, in the log. */
    private fun logStatus() {
        logger.info { "SIGUSR1: supervisor pid $ownPid $phase, $count workers, ${serving()} serving, ${restarting()} restarting, ${spares.size} spares" }
        workerStatus().forEach { logger.info { "SIGUSR1: $it" } }
    }

    /** Every worker's status, by id: safe from any thread. */
    fun workerStatus(): List<WorkerStatus> {
        val now = System.nanoTime()
        return current.values.sortedBy { it.id }.map { w ->
            WorkerStatus(
                id = w.id,
                pid = w.pid,
                serving = w.serving,
                uptime = Duration.ofNanos(now - w.startedNanos),
                restarts = restartsById[w.id] ?: 0,
                cpuTime = Duration.ofNanos(ProcStat.cpuNanos(w.pid)),
                rssBytes = ProcStat.rssBytes(w.pid),
            )
        }
    }

    private suspend fun stopAll() {
        if (!stopping) {
            phase = "stopping"
            notify("STOPPING=1", "STATUS=stopping ${current.size} workers")
        }
        stopping = true
        rolling?.cancel()
        recycling?.cancel()
        // A graceful stop during an upgrade stops the new supervisor too: it must not serve on alone.
        if (!handedOver) {
            upgrade?.cancel()
            upgrader.stopSuccessor()
        }
        // New connections are refused from now on, rather than queued for workers that are leaving.
        launcher.sharedChannels.forEach { it.close() }
        stop(current.values + leaving + spares.takeAll())
        archive?.abandonTraining() // a training JVM stopped now wrote its archive as it exited: incomplete
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

    private fun feature(signal: String) = when (signal) {
        "HUP" -> "rolling restart"
        "USR2" -> "upgrade of the supervisor"
        "TTIN", "TTOU" -> "resizing"
        "USR1" -> "status report"
        else -> "graceful stop"
    }

    /** SIGTTIN: worker `count` is started (a spare takes it when there is one); ids stay `0 until count`. */
    private fun addWorker(state: RestartState): RestartState {
        val id = count
        val worker = try {
            replace(id)
        } catch (e: IOException) {
            logger.error(e) { "SIGTTIN: cannot start child $id; still $count workers" }
            return state
        }
        count++
        logger.info { "SIGTTIN: child $id (pid ${worker.pid}) added, $count workers" }
        moveToNewShares()
        options.listener?.onEvent(WorkerEvent.Added(id, worker.pid))
        notify(status())
        return policy.onAdded(state, id)
    }

    /** SIGTTOU: the highest id leaves the pool and is stopped gracefully, as a rolling restart stops a worker; the last one stays. */
    private fun removeWorker(state: RestartState): RestartState {
        val id = count - 1
        if (count <= 1 || (id in state.alive && state.alive.size <= 1)) {
            logger.warn { "SIGTTOU: the last worker is not removed" }
            return state
        }
        count--
        restartsById.remove(id)
        val worker = current.remove(id)
        logger.info { "SIGTTOU: child $id" + (worker?.let { " (pid ${it.pid})" } ?: "") + " removed, $count workers" }
        options.listener?.onEvent(WorkerEvent.Removed(id, worker?.pid ?: -1))
        if (worker != null) {
            // Mid rolling restart, the worker it replaces goes too.
            val leavingNow = listOfNotNull(worker, worker.replacing)
            leavingNow.forEach {
                it.removed = true
                leaving += it
            }
            scope.launch { stop(leavingNow) }
        }
        moveToNewShares()
        notify(status())
        // A worker that retired (exited 0) is no longer alive: there is nothing to take out of the policy's books.
        return if (id in state.alive) policy.onRemoved(state, id) else state
    }

    /**
     * After a resize: every serving worker to its slice of the CPUs for the new count (its
     * processor count changes when it is next replaced). Mid rolling restart that is the old
     * worker of an id; one not ready yet moves when it is, its start-up on every CPU.
     */
    private fun moveToNewShares() {
        val cpus = cpus ?: return
        current.forEach { (id, worker) ->
            val serving = if (worker.serving) worker else worker.replacing?.takeIf { it.serving }
            serving?.let { cpus.move(it.pid, id, count) }
        }
    }

    /** From code in this process ([dev.prefork.addWorker], [dev.prefork.removeWorker]): the same as the signals. */
    fun resize(by: Int) {
        events.trySend(SupervisorEvent.Resize(by))
    }

    /** A change of state: one datagram to systemd when it listens, and the status file when there is one. */
    private fun notify(vararg assignments: String) {
        if (handedOver) return // the new supervisor speaks for the service now
        systemd?.send(assignments.joinToString("\n"))
        statusFile?.write(ownPid, phase, count, serving(), restarting(), spares.size)
    }

    private fun serving(): Int = current.values.count { it.serving }

    /** Ids with no worker running: a restart due, or a worker being started. */
    private fun restarting(): Int = count - current.size

    /** The `STATUS=` line: how many workers serve, and what else is going on. */
    private fun status(): String {
        val restarting = restarting()
        return "STATUS=${serving()} of $count workers serving" + (if (restarting > 0) ", $restarting restarting" else "") +
            (if (spares.size > 0) ", ${spares.size} spares" else "")
    }

    companion object {
        /** The supervisor running in this process, once its workers are started; null otherwise. */
        @Volatile
        var running: Supervisor? = null
            private set


        /** How long an exit waits for the dead worker's ready pipe to be read to its end. */
        private const val READY_PIPE_DRAIN_MILLIS = 1_000L
        private val NEWLINE = "\n".toByteArray()
        private val READY_LINE = "ready\n".toByteArray()
        private val SPARE_LINE = "spare\n".toByteArray()
        private val ALIVE_LINE = "alive\n".toByteArray()
    }
}
