package dev.prefork.supervisor

import dev.prefork.ExitStatus

/** What the supervisor's event loop acts on, one at a time, on its own thread. */
internal sealed interface SupervisorEvent {
    class Exited(val worker: Child, val status: ExitStatus) : SupervisorEvent
    class StartDue(val id: Int) : SupervisorEvent
    data object SpareDue : SupervisorEvent

    /** The first workers are ready: spares and the training run may start. */
    data object FirstReady : SupervisorEvent
    class TrainingTimedOut(val trainer: Child) : SupervisorEvent
    class Signaled(val name: String) : SupervisorEvent

    /** One worker more ([by] 1) or fewer (-1), from a signal or from code in this process. */
    class Resize(val by: Int) : SupervisorEvent

    /** Time to tell systemd's watchdog that the event loop runs. */
    data object Watchdog : SupervisorEvent

    /** Time to look for workers past their heartbeat, memory or age limits. */
    data object Check : SupervisorEvent
}
