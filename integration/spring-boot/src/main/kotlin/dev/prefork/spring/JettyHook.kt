package dev.prefork.spring

import dev.prefork.Worker
import dev.prefork.jetty.DrainHandler
import org.eclipse.jetty.server.NetworkConnectionLimit
import org.eclipse.jetty.server.Server
import org.eclipse.jetty.server.ServerConnector
import java.nio.channels.ServerSocketChannel

/**
 * Jetty (12.0 under Spring Boot 3.5, 12.1 under 4.x) in a prefork worker: Boot's connector is
 * opened on the shared socket instead of binding `server.port` (it reports the shared socket's
 * port), and on the worker's SIGTERM it stops accepting while the server's handler, wrapped in
 * prefork-jetty's [DrainHandler], answers what it holds with `Connection: close`. Spring's
 * graceful shutdown, which follows, stops Jetty.
 */
internal object JettyHook {
    /** Called with Boot's `org.eclipse.jetty.server.Server`, its connector made, before it starts. */
    fun attach(server: Any, socket: ServerSocketChannel) {
        server as Server
        val connectors = server.connectors.filterIsInstance<ServerConnector>()
        if (connectors.size != 1 || server.connectors.size != 1) {
            throw PreforkServerException(
                "prefork worker cannot serve the shared socket with Jetty: Spring Boot ${SpringBoot.version()} made " +
                    "${server.connectors.size} connectors (${server.connectors.joinToString { it.javaClass.simpleName }}) where prefork expects one ServerConnector",
                "Leave Jetty's connectors to Spring Boot (no JettyServerCustomizer that adds one); prefork shares one socket, for one connector.",
            )
        }
        val connector = connectors.single()
        connector.open(socket)
        // Boot set the server's handler before the customizers, and wraps it afterwards only for its own graceful stop.
        val drain = server.handler?.let { DrainHandler(it) }
        if (drain != null) server.handler = drain
        Worker.onStopAccepting {
            // A connection limit (server.jetty.max-connections) would let the acceptor accept again when a connection closes.
            server.getBeans(NetworkConnectionLimit::class.java).forEach { it.stop() }
            connector.isAccepting = false
            drain?.drain(Worker.drainTimeout().toMillis())
        }
    }
}
