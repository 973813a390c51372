package dev.prefork.jetty

import dev.prefork.Worker
import org.eclipse.jetty.server.NetworkConnectionLimit
import org.eclipse.jetty.server.Server
import org.eclipse.jetty.server.ServerConnector
import org.eclipse.jetty.util.component.LifeCycle
import java.net.InetSocketAddress
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
 * within `Worker.drainTimeout()`. Where the framework adds the connectors itself (Javalin),
 * [open] readies one made for it instead.
 */
public object PreforkJetty {
    /**
     * Adds to [server] a [ServerConnector] opened on [socket], readies [server] for prefork as
     * [open] does, and stops it on JVM shutdown (Jetty's `stopAtShutdown`). Returns the
     * connector.
     */
    @JvmStatic
    public fun connector(server: Server, socket: ServerSocketChannel): ServerConnector {
        val connector = open(ServerConnector(server), socket)
        server.addConnector(connector)
        server.stopAtShutdown = true
        return connector
    }

    /**
     * Opens [connector] on [socket] and readies its server for prefork, without adding the
     * connector to the server: for frameworks that add the connectors they are given, as
     * Javalin's `cfg.jetty.addConnector((server, httpConfig) -> ...)` does. The server's
     * handler, whatever it is when the server starts, is wrapped in a [DrainHandler]; a
     * graceful stop timeout ([Worker.drainTimeout]) unless one was set; `Worker.ready()` once
     * started; on SIGTERM, the connector stops accepting and the handler drains. Stopping the
     * server on JVM shutdown is left to the framework (with Javalin, a shutdown hook calling
     * `app.stop()`): a second stop at the same time would race it. Returns [connector].
     */
    @JvmStatic
    public fun open(connector: ServerConnector, socket: ServerSocketChannel): ServerConnector {
        val server = connector.server
        connector.open(socket)
        // What Jetty and the frameworks log as the connector's address, which it never binds.
        (socket.localAddress as? InetSocketAddress)?.let { connector.host = it.hostString }
        if (server.stopTimeout <= 0) server.stopTimeout = Worker.drainTimeout().toMillis()
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
