package dev.prefork.quarkus

import java.net.InetSocketAddress
import java.nio.channels.ServerSocketChannel

/**
 * Quarkus 3 on prefork's shared socket. Quarkus serves HTTP with Vert.x 4.5, which binds a
 * socket of its own and has no option to serve one it is given; this artifact gives Vert.x a
 * transport (a `io.vertx.core.spi.transport.Transport` service) whose server channel is
 * prefork-netty's over the shared socket, so Vert.x's bind binds nothing and every worker
 * accepts from the one queue the supervisor bound:
 *
 * ```java
 * @QuarkusMain
 * public class Main {
 *     public static void main(String... args) throws Exception {
 *         PreforkQuarkus.logToConsole();   // the supervisor never starts Quarkus
 *         ServerSocketChannel socket = Prefork.bindSockets(8080, "127.0.0.1", 1024).get(0);
 *         Prefork.forkProcesses(ForkOptions.builder().numProcesses(4).explicitReady(true).build());
 *         PreforkQuarkus.serve(socket);   // only workers get here
 *         Quarkus.run(args);
 *     }
 * }
 * ```
 *
 * The worker is ready (`Worker.ready()`) when Vert.x has bound its HTTP server, which Quarkus
 * does once the application has started. On the worker's SIGTERM its server channel closes
 * (the other workers go on accepting); from then on each HTTP/1 answer says
 * `Connection: close` and its connection closes after it (an idle one after a second); and the
 * JVM's shutdown, Quarkus's with it, begins once those connections are closed, within
 * `Worker.drainTimeout()`.
 */
public object PreforkQuarkus {
    /**
     * Sends this JVM's log to the console (stdout, at INFO and above, in Quarkus's default
     * format) until Quarkus configures logging; call it first in `main`. Quarkus's log manager
     * holds every record back until Quarkus starts, and a prefork supervisor never starts
     * Quarkus: without this, the supervisor's log (workers started, exited, restarted, rolling
     * restarts) shows only when it exits. In a worker, Quarkus's own log handlers take over when
     * it starts. Does nothing once Quarkus, or an earlier call, configured logging.
     */
    @JvmStatic
    public fun logToConsole() {
        ConsoleLog.start()
    }

    /**
     * Makes this JVM's Quarkus HTTP server serve [socket] (what `bindSockets` returned), on
     * Vert.x's NIO event loops; call it before `Quarkus.run`. It sets three of Quarkus's
     * properties as system properties, which outrank `application.properties` and the
     * environment: `quarkus.vertx.prefer-native-transport=true`, the switch that makes Vert.x
     * look for transport services (this JVM then runs this artifact's, ahead of a native
     * transport on the class path), and `quarkus.http.host` and `quarkus.http.port`, the
     * socket's address, on which Quarkus's HTTP verticles share one server channel.
     *
     * One socket per JVM, the HTTP server's: another Vert.x server on a port of its own (the
     * management interface, a separate HTTPS or gRPC port) fails to start, since every worker
     * would bind that port.
     *
     * @throws IllegalArgumentException when [socket] is closed or not bound.
     * @throws IllegalStateException when a socket was given already.
     */
    @JvmStatic
    public fun serve(socket: ServerSocketChannel) {
        SharedSocketTransport.serve(socket)
        val local = socket.localAddress as InetSocketAddress
        System.setProperty("quarkus.vertx.prefer-native-transport", "true")
        System.setProperty("quarkus.http.host", local.address.hostAddress)
        System.setProperty("quarkus.http.port", local.port.toString())
    }
}
