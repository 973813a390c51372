package dev.prefork.vertx

import io.vertx.core.transport.Transport
import java.nio.channels.ServerSocketChannel

/**
 * Vert.x 5 on prefork's sockets:
 *
 * ```java
 * ServerSocketChannel socket = Prefork.bindSockets(8080, "127.0.0.1").get(0);
 * int id = Prefork.forkProcesses(options);
 * Vertx vertx = Vertx.builder().withTransport(PreforkVertx.transport(socket)).build();
 * Worker.onDrained(() -> vertx.close().await());
 * vertx.createHttpServer().requestHandler(router).listen(8080, "127.0.0.1");
 * ```
 *
 * The first TCP server the Vert.x instance listens with serves the shared socket itself (no
 * bind of its own, one accept queue for all workers); listen on the socket's port, or on 0.
 * Verticle instances listening on that port share that server, as Vert.x shares a port. The
 * worker is ready once `listen` succeeded. On the worker's SIGTERM, prefork closes the server
 * channel, and the HTTP/1.x connections end: answers from then on say `Connection: close`, the
 * connection closing after its answer; an idle one is closed after a second. Close Vert.x once
 * the worker drained, from `Worker.onDrained` as above, not from a shutdown hook: Vert.x's
 * own shutdown closes idle keep-alive connections at once, while their clients may be sending
 * on them. HTTP/2 connections are not drained: closing Vert.x ends them (GOAWAY).
 */
public object PreforkVertx {
    /**
     * [base] (Vert.x's NIO transport unless given; its native epoll one, `Transport.EPOLL`,
     * works too) with one difference: the first TCP server channel it makes is Netty's over
     * [socket] (see `PreforkNetty`), whose connections drop keep-alive once the worker stops
     * (`PreforkNetty.httpDrainHandler`, placed after Vert.x's HTTP/1.x codec). With
     * [maxConnections], that server holds at most so many connections at once, and leaves the
     * next ones in the shared queue for a worker with room (`PreforkNetty.connectionLimit`).
     * Pass it to `Vertx.builder().withTransport(...)`. One socket per Vert.x instance; servers
     * it listens with afterwards bind as usual. The first server must listen on the socket's
     * port (or 0): a first `listen` on another port fails, naming both, and the socket is gone
     * from this worker. `vertx.isNativeTransportEnabled()` says true even on NIO (Vert.x
     * asks whether its transport is its own NIO one).
     *
     * @throws IllegalArgumentException when [base] is neither NIO nor epoll, or is not available,
     *   when [socket] is closed or not bound, or when [maxConnections] is not positive.
     */
    @JvmStatic
    @JvmOverloads
    public fun transport(socket: ServerSocketChannel, base: Transport = Transport.NIO, maxConnections: Int = Int.MAX_VALUE): Transport {
        require(maxConnections > 0) { "maxConnections <= 0: $maxConnections" }
        require(base.available()) { "Vert.x transport ${base.name()} is not available: ${base.unavailabilityCause()}" }
        val server = when (base.name()) {
            "nio" -> ServerChannelKind.NIO
            "epoll" -> ServerChannelKind.EPOLL
            else -> throw IllegalArgumentException("Vert.x transport ${base.name()}: prefork serves its socket on Vert.x's nio or epoll transport")
        }
        val implementation = SharedSocketTransport(base.implementation(), server.factory(socket), maxConnections)
        return object : Transport {
            override fun name(): String = base.name()

            override fun available(): Boolean = true

            override fun unavailabilityCause(): Throwable? = null

            override fun implementation(): io.vertx.core.spi.transport.Transport = implementation
        }
    }
}
