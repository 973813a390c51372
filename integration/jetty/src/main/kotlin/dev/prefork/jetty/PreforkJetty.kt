package dev.prefork.jetty

import dev.prefork.Worker
import org.eclipse.jetty.server.NetworkConnectionLimit
import org.eclipse.jetty.server.Server
import org.eclipse.jetty.server.ServerConnector
import org.eclipse.jetty.util.component.LifeCycle
import java.nio.channels.ServerSocketChannel

/**
 * Jetty 12 on prefork's sockets:
 *
 * ```java
 * ServerSocketChannel socket = Prefork.bindSockets(8080, "127.0.0.1").get(0);
 * int id = Prefork.forkProcesses(options);
 * Server server = new Server();
 * server.setHandler(app);
 * PreforkJetty.connector(server, socket);
 * server.start();
 * server.join();
 * ```
 *
 * The connector serves the shared socket itself (no bind of its own, one accept queue for all
 * workers). The worker is ready once the server has started. On the worker's SIGTERM, after
 * prefork closed its handle on the socket, the connector stops accepting and the server's
 * handler drains ([DrainHandler]); then Jetty's shutdown hook stops the server gracefully,
 * within `Worker.drainTimeout()`.
 */
public object PreforkJetty {
    /**
     * Adds to [server] a [ServerConnector] opened on [socket], and readies [server] for
     * prefork: its handler, whatever it is when the server starts, is wrapped in a
     * [DrainHandler]; a graceful stop timeout ([Worker.drainTimeout]) unless one was set, and
     * a stop on JVM shutdown; `Worker.ready()` once started; on SIGTERM, the connector stops
     * accepting and the handler drains. Returns the connector.
     */
    @JvmStatic
    public fun connector(server: Server, socket: ServerSocketChannel): ServerConnector {
        val connector = ServerConnector(server)
        connector.open(socket)
        server.addConnector(connector)
        if (server.stopTimeout <= 0) server.stopTimeout = Worker.drainTimeout().toMillis()
        server.stopAtShutdown = true
        var drain: DrainHandler? = null
        server.addEventListener(object : LifeCycle.Listener {
            override fun lifeCycleStarting(event: LifeCycle) {
                server.handler?.let { handler -> if (handler !is DrainHandler) server.handler = DrainHandler(handler).also { drain = it } }
            }

            override fun lifeCycleStarted(event: LifeCycle) {
                Worker.ready()
            }
        })
        Worker.onStopAccepting {
            // prefork closed this process's handle on the socket already: the acceptor must not try
            // again, and a connection limit that lets it accept when a connection closes goes first.
            server.getBeans(NetworkConnectionLimit::class.java).forEach { it.stop() }
            connector.isAccepting = false
            drain?.drain(Worker.drainTimeout().toMillis())
        }
        return connector
    }
}
