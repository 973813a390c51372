package dev.prefork.spring

import dev.prefork.Worker
import dev.prefork.taskId
import org.apache.catalina.connector.Connector
import org.apache.tomcat.util.res.StringManager
import org.slf4j.LoggerFactory
import java.nio.channels.ClosedChannelException
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.logging.Filter
import java.util.logging.LogRecord
import java.util.logging.Logger

/**
 * Tomcat in a prefork worker: its connector serves the shared listening socket the worker
 * inherited on fd 0 (`useInheritedChannel`), and on the worker's SIGTERM it drains so that no
 * request fails, with one socket shared by every worker:
 * 1. prefork has closed this worker's handle on the socket, waking Tomcat's acceptor (which
 *    would otherwise take one more connection from the shared queue, then drop it);
 * 2. it waits, at most [ACCEPTOR_WAIT_MILLIS], until the acceptor failed an accept on the closed
 *    socket: a connection its last accept returned has been handed on by then. Tomcat drops a
 *    connection accepted just before the acceptor's stop (`Acceptor.run`: `stopCalled` is checked
 *    after the accept), and on a busy machine the acceptor can be that slow between the two;
 * 3. `closeServerSocketGraceful()` ends the acceptor and turns keep-alive off: the next answer
 *    on each open connection says `Connection: close`;
 * 4. it waits, within `Worker.drainTimeout()`, for those connections to close.
 *
 * Spring's own graceful shutdown (`server.shutdown=graceful`), which follows, finds nothing left
 * to do. Tomcat's `pause()`, which it would start with, closes a keep-alive connection that
 * sends a new request without an answer, and wakes the acceptor with a connection of its own
 * that, on a shared socket, lands in another worker.
 */
internal object TomcatHook {
    private val logger = LoggerFactory.getLogger(TomcatHook::class.java)

    private const val ACCEPTOR_WAIT_MILLIS = 200L

    /** Counted down when the acceptor's accept failed on the socket prefork closed: from then on it takes no connection. */
    private val acceptorSawClose = CountDownLatch(1)

    /** Held here: java.util.logging keeps loggers weakly, and would forget a filter on one nobody references. */
    private val acceptorLogger: Logger = Logger.getLogger("org.apache.tomcat.util.net.Acceptor")
    private val endpointLogger: Logger = Logger.getLogger("org.apache.tomcat.util.net.NioEndpoint")

    /** Called with each of Tomcat's connectors (a `org.apache.catalina.connector.Connector`) before it starts. */
    fun attach(connector: Any) {
        connector as Connector
        check(connector.setProperty("useInheritedChannel", "true")) { "Tomcat refused useInheritedChannel on $connector" }
        quietAcceptorWhileStopping()
        Worker.onStopAccepting { drain(connector) }
    }

    private fun drain(connector: Connector) {
        val protocol = connector.protocolHandler
        // Not there within the wait: the acceptor is not in an accept (at its connection limit, say), so it holds no connection to drop.
        if (!acceptorSawClose.await(ACCEPTOR_WAIT_MILLIS, TimeUnit.MILLISECONDS)) {
            logger.debug("prefork worker {}: the acceptor was not in an accept within {} ms", taskId(), ACCEPTOR_WAIT_MILLIS)
        }
        protocol.closeServerSocketGraceful()
        val timeout = Worker.drainTimeout()
        val remainingMillis = protocol.awaitConnectionsClose(timeout.toMillis())
        if (remainingMillis <= 0) logger.warn("prefork worker {}: connections still open after the drain timeout ({})", taskId(), timeout)
    }

    /**
     * Once the worker is stopping, the acceptor's accept fails on the closed socket (an ERROR
     * with a ClosedChannelException), and the endpoint cannot wake the acceptor through it (a
     * WARN): expected then, and only then, so dropped then and only then. The acceptor's ERROR
     * is also how the drain learns that the acceptor is past its last accept.
     */
    private fun quietAcceptorWhileStopping() {
        acceptorLogger.filter = Filter { record: LogRecord ->
            val expected = Worker.isStopping() && record.thrown is ClosedChannelException
            if (expected) acceptorSawClose.countDown()
            !expected
        }
        val unlockWarning = StringManager.getManager("org.apache.tomcat.util.net")
            .getString("endpoint.debug.unlock.localNone")
            .split("{0}")
            .joinToString(".*") { Regex.escape(it) }
            .toRegex()
        endpointLogger.filter = Filter { record: LogRecord -> !(Worker.isStopping() && record.message?.let(unlockWarning::matches) == true) }
    }
}
