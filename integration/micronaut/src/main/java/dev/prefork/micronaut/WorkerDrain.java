package dev.prefork.micronaut;

import dev.prefork.Prefork;
import dev.prefork.Worker;
import dev.prefork.netty.PreforkNetty;
import io.micronaut.context.event.BeanCreatedEvent;
import io.micronaut.context.event.BeanCreatedEventListener;
import io.micronaut.http.netty.channel.ChannelPipelineCustomizer;
import io.micronaut.http.server.netty.NettyServerCustomizer;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPipeline;
import jakarta.inject.Singleton;
import java.nio.channels.ClosedChannelException;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A worker's SIGTERM for Micronaut's HTTP server. prefork has closed the worker's handle on the
 * shared socket already; then this closes the server's listener channel, and each HTTP/1
 * connection drains through prefork-netty's handler, put right after Micronaut's HTTP codec:
 * requests in flight are answered with {@code Connection: close}, idle keep-alive connections
 * are closed after a grace. Only when the connections are gone (at most
 * {@code Worker.drainTimeout()}) does the JVM go on to shut down. Micronaut's own stop, run
 * from its shutdown hook, stops the application context at once while its event loops close
 * the connections left, and its (experimental) graceful shutdown closes an idle keep-alive
 * connection at once: that races with the client's next request, which fails.
 */
@Singleton
final class WorkerDrain implements BeanCreatedEventListener<NettyServerCustomizer.Registry>, NettyServerCustomizer {
    private static final Logger LOG = LoggerFactory.getLogger(WorkerDrain.class);
    private static final String DRAIN = "prefork-drain";
    private static final String CLOSED_ON_STOP = "prefork-closed-on-stop";
    private static final long CLOSE_MILLIS = 5_000;
    private static final long POLL_MILLIS = 10;

    /** HTTP/1 connections with a drain handler, until they close. */
    private final Set<Channel> connections = ConcurrentHashMap.newKeySet();
    private final AtomicBoolean waiting = new AtomicBoolean();

    @Override
    public NettyServerCustomizer.Registry onCreated(BeanCreatedEvent<NettyServerCustomizer.Registry> event) {
        if (Prefork.isWorker()) {
            event.getBean().register(this);
        }
        return event.getBean();
    }

    @Override
    public NettyServerCustomizer specializeForChannel(Channel channel, ChannelRole role) {
        if (role == ChannelRole.LISTENER && channel.pipeline().get(CLOSED_ON_STOP) == null) {
            channel.pipeline().addFirst(CLOSED_ON_STOP, ClosedOnStop.INSTANCE);
            Worker.onStopAccepting(() -> channel.close().awaitUninterruptibly(CLOSE_MILLIS, TimeUnit.MILLISECONDS));
            return this;
        }
        if (role == ChannelRole.CONNECTION) {
            return new Connection(channel);
        }
        return this;
    }

    private final class Connection implements NettyServerCustomizer {
        private final Channel channel;

        Connection(Channel channel) {
            this.channel = channel;
        }

        @Override
        public void onStreamPipelineBuilt() {
            ChannelPipeline pipeline = channel.pipeline();
            if (pipeline.get(ChannelPipelineCustomizer.HANDLER_HTTP_SERVER_CODEC) == null || pipeline.get(DRAIN) != null) {
                return; // HTTP/2: Micronaut's graceful shutdown sends GOAWAY, when enabled
            }
            pipeline.addAfter(ChannelPipelineCustomizer.HANDLER_HTTP_SERVER_CODEC, DRAIN, PreforkNetty.httpDrainHandler());
            connections.add(channel);
            channel.closeFuture().addListener(closed -> connections.remove(channel));
            // prefork-netty's handlers tell their connections to drain from a stop-accepting action
            // they add when the first of them joins a pipeline (just now, on this event loop): the
            // wait goes after it.
            if (waiting.compareAndSet(false, true)) {
                Worker.onStopAccepting(WorkerDrain.this::awaitConnections);
            }
        }
    }

    private void awaitConnections() {
        long started = System.nanoTime();
        long deadline = started + Worker.drainTimeout().toNanos();
        connections.removeIf(channel -> channel.pipeline().get(DRAIN) == null); // upgraded to another protocol
        while (!connections.isEmpty() && System.nanoTime() < deadline) {
            try {
                Thread.sleep(POLL_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
        if (!connections.isEmpty()) {
            LOG.warn("{} HTTP connections still open after the drain timeout ({} ms): Micronaut's stop closes them",
                    connections.size(), Worker.drainTimeout().toMillis());
        } else {
            LOG.debug("HTTP connections drained in {} ms", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started));
        }
    }

    /**
     * prefork closes the worker's handle on the shared socket before the listener channel is
     * closed, so an accept the event loop had under way fails: that is the stop, not an error
     * for Netty to log.
     */
    @ChannelHandler.Sharable
    private static final class ClosedOnStop extends ChannelInboundHandlerAdapter {
        static final ClosedOnStop INSTANCE = new ClosedOnStop();

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (cause instanceof ClosedChannelException && Worker.isStopping()) {
                ctx.close();
            } else {
                ctx.fireExceptionCaught(cause);
            }
        }
    }
}
