package dev.prefork

import dev.prefork.supervisor.WorkerRuntime
import dev.prefork.supervisor.WorkerStop
import java.time.Duration
import java.util.function.BooleanSupplier

/**
 * A worker's side of [forkProcesses], for the server that runs in it: when it is serving, and
 * what stopping to accept means for it. Outside a worker (in the supervisor, or a program that
 * never forked) every call here does nothing, so the same `main` runs in both.
 *
 * What a worker does on SIGTERM (the supervisor's graceful stop, or the old worker's turn in
 * a rolling restart), in order:
 * 1. prefork closes this worker's handles on the listening sockets it handed over (what
 *    `bindSockets` returned, and [System.inheritedChannel] with
 *    [ForkOptions.Builder.inheritedChannel]; stdout and stderr stay where they were, although
 *    the JDK points them at /dev/null when that channel closes): the socket and its accept
 *    queue stay open in the supervisor and the other workers, so no connection is refused or
 *    lost, and a thread blocked in `accept` here wakes up with an exception;
 * 2. the actions given to [onStopAccepting] run, in the order they were added: the server's
 *    own way to stop accepting (quiet its acceptor threads, turn keep-alive off);
 * 3. the JVM shuts down as on any SIGTERM: shutdown hooks run, a framework's graceful
 *    shutdown among them, and the JVM exits with status 143;
 * 4. meanwhile prefork keeps the JVM up until the connections this worker accepted are
 *    closed, at most [drainTimeout], so even a server that does nothing on SIGTERM finishes
 *    the requests it holds; then the actions given to [onDrained] run.
 */
public object Worker {
    /**
     * Tells the supervisor this worker is serving. With [ForkOptions.Builder.explicitReady] a
     * rolling restart stops the old worker only after its replacement called this; otherwise
     * the worker was ready when `forkProcesses` returned in it, and this does nothing. Only the
     * first call counts; safe from any thread. In a spare that has no id yet it counts from the
     * moment the spare takes over one (a server started during a warm-up says it early).
     */
    @JvmStatic
    public fun ready() {
        WorkerRuntime.ready()
    }

    /**
     * True in a spare ([ForkOptions.Builder.spareWorkers]) that has not been given a worker's id
     * yet: a JVM that runs `main` up to `forkProcesses`, which then blocks until the supervisor
     * hands it the id of a worker that exited. Code before `forkProcesses` can use the wait to
     * warm up: load what serving needs and run the request path (on a private socket, say, bound
     * to port 0, never the shared one) until the JIT has compiled it, so that the spare's first
     * answers are as fast as a warm worker's. False everywhere else, and in a spare once
     * `forkProcesses` returned in it.
     */
    @JvmStatic
    public fun isSpare(): Boolean = WorkerRuntime.isSpare

    /**
     * True once this worker got SIGTERM and is on its way out (stopped accepting, draining):
     * for a health check that should say so, or a log filter that expects the errors a
     * stopping server's acceptor throws. Always false outside a worker.
     */
    @JvmStatic
    public fun isStopping(): Boolean = WorkerStop.isStopping

    /**
     * How long this worker may drain after SIGTERM ([ForkOptions.drainTimeout], never more than
     * the supervisor's `gracefulTimeout`); 10 s outside a worker.
     */
    @JvmStatic
    public fun drainTimeout(): Duration = Duration.ofMillis(WorkerRuntime.drainMillis)

    /**
     * Adds what this worker's server must do once it stops taking new connections (stop its
     * acceptor threads, close a server channel prefork did not hand over, turn keep-alive off),
     * run on SIGTERM right after prefork closed the sockets it handed over and before the JVM's
     * shutdown hooks; see [Worker]. An action runs on a prefork thread; it may wait, within
     * [drainTimeout], for the connections it holds to finish. An exception it throws is logged
     * and the stop goes on.
     */
    @JvmStatic
    public fun onStopAccepting(action: Runnable) {
        if (WorkerRuntime.isWorker) WorkerStop.onStopAccepting(action)
    }

    /**
     * Adds an action that runs once this worker has drained after SIGTERM (its accepted
     * connections closed, or [ForkOptions.drainTimeout] passed), from prefork's own shutdown
     * hook; in a shutdown for any other reason it runs without waiting. This is where to stop a
     * server whose own shutdown would cut requests in flight (Ktor's Netty engine closes every
     * connection as soon as it stops): turn its shutdown hook off and stop it here instead.
     */
    @JvmStatic
    public fun onDrained(action: Runnable) {
        if (WorkerRuntime.isWorker) WorkerStop.onDrained(action)
    }

    /**
     * Sets the check this worker's heartbeat depends on, with [ForkOptions.Builder.workerTimeout]:
     * before each heartbeat prefork's heartbeat thread calls [check], and sends the heartbeat
     * only when it returns true. A check that returns false, throws, or never returns (the lock
     * it takes is deadlocked) keeps the worker silent, and past the timeout the supervisor stops
     * and restarts it. Ask the server something cheap that needs its working parts: a request
     * on a loopback connection, a task through its event loop, with a deadline well inside
     * the timeout: a heartbeat comes every quarter of it plus the check's own time, so a check
     * that takes more than about three quarters of it times the worker out. It runs in spares
     * too, while they wait in `forkProcesses`. Until the worker is ready a failing check is
     * given [ForkOptions.Builder.readyTimeout], when that is longer. A later call replaces the
     * check, null removes it; without a workerTimeout it is never called.
     */
    @JvmStatic
    public fun healthCheck(check: BooleanSupplier?) {
        WorkerRuntime.healthCheck = check
    }
}
