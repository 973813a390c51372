package dev.prefork.supervisor

import dev.prefork.ExitStatus
import dev.prefork.ForkOptions
import dev.prefork.GiveUpReason
import dev.prefork.PipeReader
import dev.prefork.RestartDecision
import dev.prefork.RestartPolicy
import dev.prefork.RestartState
import dev.prefork.Subprocess
import dev.prefork.TooManyRestartsException
import dev.prefork.WORKER_VARIABLE_PREFIX
import dev.prefork.WorkerEvent
import dev.prefork.WorkerStatus
import dev.prefork.debug
import dev.prefork.error
import dev.prefork.info
import dev.prefork.io.PipeSource
import dev.prefork.logger
import dev.prefork.nanosOrMax
import dev.prefork.posix.Fds
import dev.prefork.posix.Linux
import dev.prefork.warn
import java.io.EOFException
import java.io.IOException
import java.nio.channels.ServerSocketChannel
import java.time.Duration
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.ThreadLocalRandom
import kotlin.system.exitProcess
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
 * assignment pipe), and a new spare is started behind it.
 */
internal class Supervisor(
    private val options: ForkOptions,
    /** How many workers there are to be: [ForkOptions.numProcesses], then changed by SIGTTIN/SIGTTOU. */
    private var count: Int,
    private val command: List<String>,
    socketGroups: List<Pair<List<ServerSocketChannel>, Boolean>>,
) {
    private val policy = RestartPolicy.of(options)
    private val events = Channel<Event>(Channel.UNLIMITED)
    /** The pool by id; concurrent only so that [workerStatus] can read it from any thread. */
    private val current = ConcurrentHashMap<Int, Child>()

    /** Restarts per id over the supervisor's life (for [workerStatus]); read from any thread too. */
    private val restartsById = ConcurrentHashMap<Int, Int>()
    private val leaving = HashSet<Child>()

    /** Spares not assigned yet, oldest first. */
    private val spares = ArrayDeque<Child>()

    /** Spares that died before they were assigned, in a row: their replacements wait longer each time. */
    private var spareFailures = 0

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

    /** The JVM whose exit writes [archive], while it runs. */
    private var trainer: Child? = null
    private var stopping = false
    private var rolling: Job? = null

    /** The replacement of a worker past [ForkOptions.maxWorkerRss] or [ForkOptions.maxWorkerAge], while it runs: one at a time. */
    private var recycling: Job? = null

    /** [ForkOptions.workerTimeout], and how often workers are told to beat: a quarter of it, at most every second. */
    private val timeoutNanos: Long? = options.workerTimeout?.nanosOrMax()
    private val heartbeatMillis: Long? = timeoutNanos?.let { (it / 4 / 1_000_000).coerceIn(MIN_HEARTBEAT_MILLIS, MAX_CHECK_MILLIS) }

    /** Until it is ready, a worker has the ready timeout if that is longer: a health check may fail while its server starts. */
    private val startGraceNanos: Long? = timeoutNanos?.let { maxOf(it, options.readyTimeout.nanosOrMax()) }

    /** When memory and age were last looked at: every second, however often heartbeats are checked. */
    private var recycleCheckedNanos = System.nanoTime()
    private val ageNanos: Long? = options.maxWorkerAge?.nanosOrMax()

    /** SIGUSR2's new supervisor while it starts; [handedOver] once it serves and this one is on its way out. */
    private var upgrade: Job? = null
    private var handedOver = false

    /** The new supervisor of an upgrade until it serves: a graceful stop meanwhile stops it too. */
    private var successor: Subprocess? = null

    private val ownPid = ProcessHandle.current().pid()

    /** The supervisor's own scope: every worker's watchers live here, whoever started the worker. */
    private lateinit var scope: CoroutineScope


    /** Child fds from 5 up, in group order (fd 3: watch pipe, fd 4: ready pipe). */
    private val passedSockets = socketGroups.filter { !it.second }.flatMap { it.first }.associateWith(SocketHandoff::fdOf)
    private val parentSocketFds = passedSockets.values.map { it.fd }
    private val encodedGroups: String = encode(socketGroups, FIRST_SOCKET_FD)

    /** The same groups for SIGUSR2's new supervisor, whose sockets start at fd 4 (fd 3: its ready pipe). */
    private val successorGroups: String = encode(socketGroups, Upgrade.FIRST_SOCKET_FD)

    /** The groups as a child must replay them, its inherited sockets numbered from [firstFd] up. */
    private fun encode(socketGroups: List<Pair<List<ServerSocketChannel>, Boolean>>, firstFd: Int): String {
        var next = firstFd
        return WorkerEnvironment.encode(
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

    /** systemd's notification socket, when this supervisor runs as a `Type=notify` service. */
    private val systemd: SystemdNotify? = SystemdNotify.fromEnvironment()

    /** [ForkOptions.statusFile], and the state it shows: starting, serving, reloading, stopping, gave-up. */
    private val statusFile: StatusFile? = options.statusFile?.let(::StatusFile)
    private var phase = "starting"

    /** A worker waits this long for its accepted connections on SIGTERM: never past the SIGKILL that follows. */
    private val drainMillis = minOf(options.drainTimeout, options.gracefulTimeout).toMillis()

    /**
     * The supervisor-alive pipe: workers get the read end as fd 3; this process keeps the write
     * end until it dies. Opened last, after every step of set-up that can fail.
     */
    private val watchPipe = Fds.pipe()
    private val watchPipeTarget = checkNotNull(WorkerEnvironment.fdTarget(watchPipe[0])) { "cannot read /proc/self/fd/${watchPipe[0]}" }

    /**
     * A worker, or a spare ([id] is [SPARE] until it takes one over; [assignFd] is this
     * process's end of its assignment pipe until then).
     */
    private class Child(@Volatile var id: Int, val process: Subprocess, @Volatile var startedNanos: Long, var assignFd: Int? = null) {
        /** True once the worker said it is serving; false if it exited first. */
        val ready = CompletableDeferred<Boolean>()
        val pid: Long get() = process.pid

        /** When it last said anything on its ready pipe (a heartbeat, mostly); null: not yet. */
        var heardNanos: Long? = null

        /** Stopped for a missed heartbeat: its exit counts as a failure whatever its status. */
        var timedOut = false

        /** How long it may serve under [ForkOptions.maxWorkerAge], its jitter drawn; null: for ever. */
        var ageLimitNanos: Long? = null

        /** Replaced for [ForkOptions.maxWorkerRss] or [ForkOptions.maxWorkerAge]; after a failed try, not again before [recycleNotBefore]. */
        var recycled = false
        var recycleNotBefore: Long? = null

        /** A spare that reached its forkProcesses, where it waits for an id. */
        var waiting = false

        /** It said it is ready (set on the supervisor's thread, as [ready] completes true). */
        @Volatile
        var serving = false

        /** Taken out of the pool by SIGTTOU: its exit ends it. */
        var removed = false

        /** During a rolling restart, the worker this one replaces until it said it is ready. */
        var replacing: Child? = null
    }

    private sealed interface Event {
        class Exited(val worker: Child, val status: ExitStatus) : Event
        class StartDue(val id: Int) : Event
        data object SpareDue : Event
        /** The first workers are ready: spares and the training run may start. */
        data object FirstReady : Event
        class TrainingTimedOut(val trainer: Child) : Event
        class Signaled(val name: String) : Event
        /** One worker more ([by] 1) or fewer (-1), from a signal or from code in this process. */
        class Resize(val by: Int) : Event
        /** Time to tell systemd's watchdog that the event loop runs. */
        data object Watchdog : Event
        /** Time to look for workers past their heartbeat, memory or age limits. */
        data object Check : Event
    }

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
                        events.send(Event.Watchdog)
                        delay(every)
                    }
                }
            }
            if (timeoutNanos != null || options.maxWorkerRss > 0 || ageNanos != null) {
                val every = heartbeatMillis ?: MAX_CHECK_MILLIS
                scope.launch {
                    while (true) {
                        delay(every)
                        events.send(Event.Check)
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
                    events.send(Event.FirstReady)
                }
                // With SO_REUSEPORT every worker has its own socket; the supervisor's would only steal connections.
                reusePortChannels.forEach { it.close() }
                for (event in events) {
                    when (event) {
                        is Event.Exited -> state = exited(event, state) ?: continue
                        // A restart due for an id that SIGTTOU removed, or that SIGTTIN has started again since, is void.
                        is Event.StartDue -> if (!stopping && event.id < count && current[event.id] == null) replace(event.id)
                        Event.SpareDue -> if (!stopping && spares.size < spareCount) startSpare()
                        Event.FirstReady -> if (!stopping) {
                            phase = "serving"
                            if (Upgrade.isSuccessor) {
                                // systemd follows the new main process (NotifyAccess=all) from this datagram on.
                                notify("MAINPID=$ownPid", "READY=1", status())
                                Upgrade.sayReady()
                            } else {
                                notify("READY=1", status())
                            }
                            repeat(spareCount - spares.size) { startSpare() }
                            if (archive?.needsTraining == true) train()
                        }
                        is Event.TrainingTimedOut -> if (trainer === event.trainer) {
                            logger.warn { "start-up archive: the training JVM (pid ${event.trainer.pid}) did not reach forkProcesses within ${options.readyTimeout}; stopping it" }
                            event.trainer.process.terminate()
                        }
                        Event.Watchdog -> if (!handedOver) systemd?.send("WATCHDOG=1")
                        Event.Check -> if (!stopping) {
                            val now = System.nanoTime()
                            checkHeartbeats(now)
                            checkRecycling(now)
                        }
                        is Event.Resize -> if (!stopping) state = if (event.by > 0) addWorker(state) else removeWorker(state)
                        is Event.Signaled -> when (event.name) {
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
                                upgrade = launch { upgradeSupervisor() }
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
                        stop(idleJvms())
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
        listOf("TERM", "INT", "HUP", "USR1", "USR2", "TTIN", "TTOU").mapNotNull { name ->
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
    private suspend fun exited(event: Event.Exited, state: RestartState): RestartState? {
        val worker = event.worker
        val status = event.status
        if (worker === trainer) {
            trainer = null
            worker.assignFd?.let(Fds::closeQuietly)
            worker.assignFd = null
            if (!stopping) archive?.trained(status.exitCode, (System.nanoTime() - worker.startedNanos) / 1_000_000)
            return null
        }
        if (worker.id == SPARE) {
            spareExited(worker, status)
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
                    spare != null -> tookOver(spare)
                    decision.delayNanos == 0L -> start(worker.id)
                    else -> later(decision.delayNanos / 1_000_000, Event.StartDue(worker.id))
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
    private fun replace(id: Int): Child = handOver(id)?.also(::tookOver) ?: start(id)

    /**
     * Gives [id] to the oldest spare; null when there is none. A spare still on its way to
     * `forkProcesses` takes it too: it is further along than a JVM started now, and reads its
     * id when it gets there. The caller then calls [tookOver].
     */
    private fun handOver(id: Int): Child? {
        while (true) {
            // One that waits already first: it answers at once.
            val spare = (spares.firstOrNull { it.waiting } ?: spares.firstOrNull())?.also { spares.remove(it) } ?: return null
            val fd = checkNotNull(spare.assignFd)
            spare.assignFd = null
            try {
                Fds.writeSmall(fd, "$id\n".toByteArray(), "the assignment pipe of spare pid ${spare.pid}")
            } catch (e: IOException) {
                logger.warn { "spare (pid ${spare.pid}) cannot take over child $id (${e.message}); trying the next" }
                scheduleSpare() // it is dying (its exit event follows, as a spare no longer waiting): another takes its place
                continue
            } finally {
                Fds.closeQuietly(fd)
            }
            spare.id = id
            spare.startedNanos = System.nanoTime()
            spare.ageLimitNanos = ageLimit()
            spare.heardNanos = null // what it said while it waited (or, its health check failing, did not) is not its start as a worker
            current[id] = spare
            return spare
        }
    }

    /**
     * Says that [spare] took over its id, and starts another spare a second later: at once, its
     * start-up would compete for the CPU with the first requests of the one that took over.
     */
    private fun tookOver(spare: Child) {
        logger.info { "child ${spare.id}: spare (pid ${spare.pid}) takes over" }
        options.listener?.onEvent(WorkerEvent.Started(spare.id, spare.pid, fromSpare = true))
        later(SPARE_REFILL_MILLIS, Event.SpareDue)
    }

    private fun start(id: Int): Child {
        val process = spawn(mapOf(WorkerEnvironment.TASK_ID to id.toString()), assignFd = null, id = id)
        val worker = Child(id, process, System.nanoTime())
        worker.ageLimitNanos = ageLimit()
        current[id] = worker
        options.listener?.onEvent(WorkerEvent.Started(id, process.pid))
        watch(worker)
        return worker
    }

    /** A spare: a worker JVM without an id, which waits in its forkProcesses for one. */
    private fun startSpare() {
        val spare = try {
            launchSpare(training = false)
        } catch (e: IOException) {
            logger.error(e) { "cannot start a spare; trying again later" }
            scheduleSpare()
            return
        }
        spares.addLast(spare)
        logger.debug { "spare (pid ${spare.pid}) started" }
        options.listener?.onEvent(WorkerEvent.SpareStarted(spare.pid))
        watch(spare)
    }

    /**
     * The start-up archive's training run: a spare, started with the flag that makes its JVM
     * write the archive as it exits, and retired as soon as it waits for an id.
     */
    private fun train() {
        val run = try {
            launchSpare(training = true)
        } catch (e: IOException) {
            logger.warn(e) { "start-up archive: cannot start its training JVM; workers start without one" }
            return
        }
        trainer = run
        logger.info { "start-up archive: training JVM (pid ${run.pid}) started, for ${archive?.file}" }
        watch(run)
        later(options.readyTimeout.toMillis(), Event.TrainingTimedOut(run))
    }

    private fun launchSpare(training: Boolean): Child {
        val assign = Fds.pipe()
        val process = try {
            spawn(mapOf(WorkerEnvironment.SPARE to (FIRST_SOCKET_FD + parentSocketFds.size).toString()), assignFd = assign[0], training = training)
        } catch (e: IOException) {
            Fds.closeQuietly(assign[1])
            throw e
        } finally {
            Fds.closeQuietly(assign[0]) // the spare has its own copy
        }
        return Child(SPARE, process, System.nanoTime(), assignFd = assign[1])
    }

    /** Ends a spare that waits for an id with status 0: `"retire"` on its assignment pipe. */
    private fun retire(spare: Child) {
        val fd = spare.assignFd ?: return
        spare.assignFd = null
        try {
            Fds.writeSmall(fd, "${WorkerRuntime.RETIRE}\n".toByteArray(), "the assignment pipe of pid ${spare.pid}")
        } catch (e: IOException) {
            logger.debug { "pid ${spare.pid} could not be retired (${e.message}): it is on its way out" }
        } finally {
            Fds.closeQuietly(fd)
        }
    }

    /** A spare died before it was assigned: another one takes its place, unless the supervisor is stopping. */
    private fun spareExited(spare: Child, status: ExitStatus) {
        leaving -= spare
        val waiting = spares.remove(spare)
        spare.assignFd?.let(Fds::closeQuietly)
        spare.assignFd = null
        val restarting = waiting && !stopping
        if (restarting) {
            logger.warn { "spare (pid ${spare.pid}) $status before it was assigned, starting another" }
            scheduleSpare()
        } else {
            logger.info { "spare (pid ${spare.pid}) $status" }
        }
        options.listener?.onEvent(WorkerEvent.SpareExited(spare.pid, status, restarting))
    }

    /** Starts a spare after 1 s, doubling up to 30 s while spares keep dying before they reach forkProcesses. */
    private fun scheduleSpare() {
        val delayMillis = minOf(SPARE_RETRY_MILLIS shl minOf(spareFailures, 5), SPARE_RETRY_MAX_MILLIS)
        spareFailures++
        later(delayMillis, Event.SpareDue)
    }

    private fun later(millis: Long, event: Event) {
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
        // Only the service's main process speaks systemd's protocols: its workers neither notify nor look for activated sockets.
        val environment = inheritedEnvironment(dropping = SystemdNotify.VARIABLES) + variables + mapOf(
            WorkerEnvironment.CONTROL_FDS to "$WATCH_FD,$READY_FD",
            WorkerEnvironment.SOCKETS to encodedGroups,
            WorkerEnvironment.WATCH_PIPE to watchPipeTarget,
            WorkerEnvironment.DRAIN_MS to drainMillis.toString(),
        ) + listOfNotNull(
            (WorkerEnvironment.READY to WorkerRuntime.EXPLICIT).takeIf { options.explicitReady },
            (WorkerEnvironment.INHERITED_CHANNEL to "1").takeIf { inheritedFd != null },
            heartbeatMillis?.let { WorkerEnvironment.HEARTBEAT_MS to it.toString() },
        )
        // A process group of its own: a terminal's Ctrl-C reaches only the supervisor, which then stops the workers in order.
        val archive = archive
        val archived = when {
            archive == null -> command
            training -> archive.trainerCommand(command)
            else -> archive.workerCommand(command)
        }
        // During SIGTTIN, worker [id] = count is started before the count grows.
        val workers = maxOf(count, (id ?: 0) + 1)
        val line = cpus?.command(archived, id, workers) ?: archived
        val builder = Subprocess.builder(line).env(environment).newProcessGroup().passFd(watchPipe[0]).readPipe()
        parentSocketFds.forEach { builder.passFd(it) }
        assignFd?.let { builder.passFd(it) } // after the sockets: fd 5 + their number
        inheritedFd?.let { builder.stdinFrom(it) }
        return builder.startDetached()
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
                        if (worker === trainer) {
                            retire(worker)
                            continue
                        }
                        worker.waiting = true
                        spareFailures = 0
                        logger.debug { "spare (pid ${process.pid}) waiting" }
                        if (worker.id == SPARE) options.listener?.onEvent(WorkerEvent.SpareReady(process.pid))
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
            events.send(Event.Exited(worker, process.exitStatus!!))
        }
    }

    /**
     * SIGHUP: replaces workers one at a time. The old worker gets SIGTERM only once its
     * replacement said it is ready (serving, with [ForkOptions.explicitReady]; its sockets
     * adopted otherwise), so with the shared accept queue held open by this process no
     * connection is ever refused.
     */
    private suspend fun rollingRestart() {
        logger.info { "SIGHUP received, replacing ${current.size} workers one at a time" + if (spares.isEmpty()) "" else " and ${spares.size} spares" }
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
        if (spares.isNotEmpty()) {
            val old = spares.toList()
            spares.clear()
            leaving += old // stopAll reaches them should a SIGTERM come meanwhile
            repeat(old.size) { startSpare() }
            stop(old)
        }
        for (id in current.keys.sorted()) {
            if (stopping) return
            val old = current[id] ?: continue
            if (old.timedOut) continue // on its way out, and restarted as a failure
            if (!replaceServing(old, "rolling restart")) return
        }
        logger.info { "rolling restart done" }
        if (archive?.needsTraining == true && trainer == null) train()
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

    /** Workers silent past [ForkOptions.workerTimeout] are stopped; until it is ready a worker has the ready timeout, if longer. */
    private fun checkHeartbeats(now: Long) {
        val timeout = timeoutNanos ?: return
        val grace = startGraceNanos ?: return
        for (worker in current.values) {
            if (worker.timedOut || worker.process.returnCode != null) continue
            val silent = now - (worker.heardNanos ?: worker.startedNanos)
            if (silent > if (worker.serving) timeout else grace) timeOut(worker, silent)
        }
    }

    /**
     * SIGTERM, with SIGCONT for a stopped JVM to act on it, then SIGKILL after the graceful
     * timeout; its exit is restarted as a failure.
     */
    private fun timeOut(worker: Child, silentNanos: Long) {
        worker.timedOut = true
        val silent = Duration.ofNanos(silentNanos)
        logger.warn { "child ${worker.id} (pid ${worker.pid}) timed out: no heartbeat for ${silent.toMillis()} ms (workerTimeout ${options.workerTimeout}); stopping it" }
        options.listener?.onEvent(WorkerEvent.TimedOut(worker.id, worker.pid, silent))
        scope.launch {
            runCatching { worker.process.terminate() }
            runCatching { worker.process.signal(Linux.SIGCONT) }
            stop(listOf(worker))
        }
    }

    /**
     * Starts the replacement of one serving worker past [ForkOptions.maxWorkerRss] or
     * [ForkOptions.maxWorkerAge], unless one runs: the oldest, so that while one old worker
     * drains, its young replacement cannot jump the queue ahead of the others.
     */
    private fun checkRecycling(now: Long) {
        if (options.maxWorkerRss <= 0 && ageNanos == null) return
        if (now - recycleCheckedNanos < MAX_CHECK_MILLIS * 1_000_000) return
        recycleCheckedNanos = now
        if (rolling?.isActive == true || recycling?.isActive == true) return
        for (worker in current.values.sortedBy { it.startedNanos - now }) {
            if (!worker.serving || worker.timedOut || worker.removed || worker.replacing != null) continue
            if (worker.recycleNotBefore?.let { now - it < 0 } == true) continue
            val reason = recycleReason(worker, now) ?: continue
            recycling = scope.launch { recycle(worker, reason) }
            return
        }
    }

    private fun recycleReason(worker: Child, now: Long): String? {
        val age = now - worker.startedNanos
        val limit = worker.ageLimitNanos
        if (limit != null && age >= limit) return "up ${Duration.ofNanos(age).toMillis()} ms, past maxWorkerAge ${options.maxWorkerAge} (+${Duration.ofNanos(limit - ageNanos!!).toMillis()} ms jitter)"
        if (options.maxWorkerRss > 0) {
            val rss = ProcStat.rssBytes(worker.pid)
            if (rss > options.maxWorkerRss) return "RSS ${rss / MIB} MiB, past maxWorkerRss ${options.maxWorkerRss / MIB} MiB"
        }
        return null
    }

    /** Replaces [old] as a rolling restart would; a failed try is tried again after [RECYCLE_RETRY_MILLIS]. */
    private suspend fun recycle(old: Child, reason: String) {
        if (current[old.id] !== old) return // exited, or removed by SIGTTOU, since the check
        logger.info { "child ${old.id} (pid ${old.pid}) recycled: $reason; replacing it" }
        options.listener?.onEvent(WorkerEvent.Recycled(old.id, old.pid, reason))
        old.recycled = true
        val ranMillis = (System.nanoTime() - old.startedNanos) / 1_000_000
        if (!replaceServing(old, "recycling")) {
            old.recycled = false
            old.recycleNotBefore = System.nanoTime() + RECYCLE_RETRY_MILLIS * 1_000_000
            return
        }
        if (options.maxWorkerRss > 0 && ranMillis < SHORT_LIFE_MILLIS) {
            logger.warn { "child ${old.id} was recycled $ranMillis ms after it started: is maxWorkerRss (${options.maxWorkerRss / MIB} MiB) below what a worker needs?" }
        }
        notify(status())
    }

    /** A new worker's share of [ForkOptions.maxWorkerAge]: the age plus a random part of the jitter. */
    private fun ageLimit(): Long? = ageNanos?.let { age ->
        val jitter = options.maxWorkerAgeJitter.nanosOrMax()
        val limit = age + if (jitter > 0) ThreadLocalRandom.current().nextLong(jitter) else 0
        if (limit < 0) Long.MAX_VALUE else limit // past 292 years: for ever
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
            stopSuccessor()
        }
        // New connections are refused from now on, rather than queued for workers that are leaving.
        sharedChannels.forEach { it.close() }
        stop(current.values + leaving + idleJvms())
        archive?.abandonTraining() // a training JVM stopped now wrote its archive as it exited: incomplete
    }

    /** The spares and the training run, taken off the books (their assignment pipes closed) to be stopped. */
    private fun idleJvms(): List<Child> {
        val idle = spares.toList() + listOfNotNull(trainer)
        spares.clear()
        trainer = null
        idle.forEach { child ->
            child.assignFd?.let(Fds::closeQuietly)
            child.assignFd = null
        }
        return idle
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

    /**
     * SIGUSR2: starts a new supervisor from this one's command line with the listening sockets
     * ([Upgrade]); once it says its workers serve, stops this one's workers gracefully and exits
     * 0. A new supervisor that exits, or is not ready within [ForkOptions.readyTimeout], is
     * stopped, and this one keeps serving.
     */
    private suspend fun upgradeSupervisor() {
        if (ownPid == 1L) {
            logger.error { "SIGUSR2: as PID 1 this supervisor cannot hand over (its container would end with it): no upgrade; SIGHUP replaces the workers" }
            return
        }
        val pipe = Fds.pipe()
        val fresh = try {
            spawnSuccessor(pipe[1])
        } catch (e: Exception) { // the spawn's IOException, or this JVM's command line unreadable
            Fds.closeQuietly(pipe[0])
            logger.error(e) { "SIGUSR2: cannot start a new supervisor; this one keeps serving" }
            return
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
            return
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
            return
        }
        logger.info { "SIGUSR2: the new supervisor (pid ${fresh.pid}) serves; stopping this one's ${current.size} workers" }
        successor = null
        handedOver = true
        stopAll()
        exitProcess(0)
    }

    /** SIGTERM to an upgrade's new supervisor that is not serving yet, SIGKILL after the graceful timeout; its workers follow it. */
    private suspend fun stopSuccessor() {
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
        val environment = inheritedEnvironment(dropping = listOf("WATCHDOG_PID")) + mapOf(
            Upgrade.SOCKETS to successorGroups,
            Upgrade.READY to checkNotNull(WorkerEnvironment.fdTarget(readyFd)) { "cannot read /proc/self/fd/$readyFd" },
        )
        val builder = Subprocess.builder(WorkerCommand.ofThisJvm()).env(environment).passFd(readyFd)
        parentSocketFds.forEach { builder.passFd(it) }
        return builder.startDetached()
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
        events.trySend(Event.Resize(by))
    }

    /** A change of state: one datagram to systemd when it listens, and the status file when there is one. */
    private fun notify(vararg assignments: String) {
        if (handedOver) return // the new supervisor speaks for the service now
        systemd?.send(assignments.joinToString("\n"))
        statusFile?.write(
            "{\"pid\":$ownPid,\"state\":\"$phase\",\"workers\":$count,\"serving\":${serving()}," +
                "\"restarting\":${restarting()},\"spares\":${spares.size},\"updated\":\"${java.time.Instant.now().truncatedTo(java.time.temporal.ChronoUnit.SECONDS)}\"}",
        )
    }

    private fun serving(): Int = current.values.count { it.serving }

    /** Ids with no worker running: a restart due, or a worker being started. */
    private fun restarting(): Int = count - current.size

    /** This supervisor's environment for a child JVM: without prefork's worker variables, systemd's activation, or [dropping]. */
    private fun inheritedEnvironment(dropping: Collection<String>): Map<String, String> = System.getenv().filterKeys {
        !it.startsWith(WORKER_VARIABLE_PREFIX) && it !in SocketActivation.VARIABLES && it !in dropping
    }

    /** The `STATUS=` line: how many workers serve, and what else is going on. */
    private fun status(): String {
        val restarting = restarting()
        return "STATUS=${serving()} of $count workers serving" + (if (restarting > 0) ", $restarting restarting" else "") +
            (if (spares.isNotEmpty()) ", ${spares.size} spares" else "")
    }

    companion object {
        /** The supervisor running in this process, once its workers are started; null otherwise. */
        @Volatile
        var running: Supervisor? = null
            private set

        private const val WATCH_FD = 3
        private const val READY_FD = 4
        private const val FIRST_SOCKET_FD = 5

        /** The id of a spare until it takes one over. */
        private const val SPARE = -1
        private const val SPARE_RETRY_MILLIS = 1_000L
        private const val SPARE_REFILL_MILLIS = 1_000L
        private const val SPARE_RETRY_MAX_MILLIS = 30_000L

        /** How long an exit waits for the dead worker's ready pipe to be read to its end. */
        private const val READY_PIPE_DRAIN_MILLIS = 1_000L
        private val NEWLINE = "\n".toByteArray()
        private val READY_LINE = "ready\n".toByteArray()
        private val SPARE_LINE = "spare\n".toByteArray()
        private val ALIVE_LINE = "alive\n".toByteArray()

        /** Heartbeats and recycling checks: at most every second, and heartbeats at least every 25 ms. */
        private const val MAX_CHECK_MILLIS = 1_000L
        private const val MIN_HEARTBEAT_MILLIS = 25L

        /** After a failed recycling try, the same worker is not tried again for this long. */
        private const val RECYCLE_RETRY_MILLIS = 30_000L

        /** A worker recycled for its memory this soon after it started hints at a limit set too low. */
        private const val SHORT_LIFE_MILLIS = 60_000L
        private const val MIB = 1024L * 1024L
    }
}
