package dev.prefork.quarkus

import org.jboss.logmanager.ExtHandler
import org.jboss.logmanager.LogContext
import org.jboss.logmanager.formatters.PatternFormatter
import org.jboss.logmanager.handlers.ConsoleHandler
import java.util.logging.Level

/**
 * The log of a JVM before Quarkus configures logging. Quarkus's log manager starts with one
 * handler on the root logger that queues every record until Quarkus, when it starts, gives it
 * the handlers `quarkus.log.*` describes; a prefork supervisor never starts Quarkus, so its
 * records would show only when it exits (the queue is printed to stderr then), and past a few
 * thousand would be lost. Giving that handler a console handler sends them out at once; in a
 * worker, Quarkus replaces it with its own when it starts.
 */
internal object ConsoleLog {
    /** Quarkus's default console format. */
    private const val FORMAT = "%d{yyyy-MM-dd HH:mm:ss,SSS} %-5p [%c{3.}] (%t) %s%e%n"

    fun start() {
        // What Quarkus.run sets first: the JDK's log manager is chosen once, by the first handler made (ours below).
        System.setProperty("java.util.logging.manager", "org.jboss.logmanager.LogManager")
        val root = LogContext.getLogContext().getLogger("")
        // Quarkus's QuarkusDelayedHandler, still queueing: no handler of its own yet
        val delayed = root.handlers.filter { it is ExtHandler && it.javaClass.simpleName.endsWith("DelayedHandler") }
        for (handler in delayed) {
            if ((handler as ExtHandler).handlers.isEmpty()) {
                handler.addHandler(ConsoleHandler(ConsoleHandler.Target.SYSTEM_OUT, PatternFormatter(FORMAT)).apply { level = Level.INFO })
            }
        }
        if (delayed.isEmpty()) {
            // A Quarkus whose log manager works otherwise: say so once rather than leave the supervisor silent.
            System.err.println(
                "prefork-quarkus: no Quarkus delayed log handler on the root logger (handlers: ${root.handlers.joinToString { it.javaClass.name }}); " +
                    "logToConsole() left logging as it is",
            )
        }
    }
}
