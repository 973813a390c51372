package dev.prefork.micronaut;

import dev.prefork.Prefork;
import io.micronaut.context.ApplicationContextBuilder;
import io.micronaut.context.ApplicationContextConfigurer;
import io.micronaut.context.annotation.ContextConfigurer;
import io.micronaut.context.env.PropertySource;
import java.io.IOException;
import java.nio.channels.Channel;
import java.nio.channels.ServerSocketChannel;
import java.util.Map;
import java.util.OptionalInt;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Points Micronaut's HTTP server at the shared socket in a prefork worker, and only there: a
 * listener named {@value #LISTENER} on file descriptor 0, which it serves without binding
 * ({@code micronaut.server.netty.listeners.prefork.fd=0} and {@code .bind=false}). prefork puts
 * the shared socket on each worker's fd 0 when {@code forkProcesses} is given
 * {@code ForkOptions.Builder.inheritedChannel(true)}; Micronaut's default NIO transport serves
 * fd 0 through {@link System#inheritedChannel()}. Once a listener is configured,
 * {@code micronaut.server.port} no longer applies, so no worker binds a port of its own.
 *
 * <p>Micronaut finds this class as a service of {@link ApplicationContextConfigurer} and runs it
 * when an application context is built; there is nothing to call.
 */
@ContextConfigurer
public final class SharedSocketListener implements ApplicationContextConfigurer {
    /** The name of the listener on the shared socket, under {@code micronaut.server.netty.listeners}. */
    public static final String LISTENER = "prefork";

    private static final String PREFIX = "micronaut.server.netty.listeners." + LISTENER + ".";
    private static final Logger LOG = LoggerFactory.getLogger(SharedSocketListener.class);

    /** Made by Micronaut's service loader. */
    public SharedSocketListener() {}

    /**
     * Adds the listener on fd 0 to {@code builder} in a prefork worker whose fd 0 is the shared
     * socket; in a worker whose fd 0 is not a listening socket, logs a warning and adds nothing.
     */
    @Override
    public void configure(ApplicationContextBuilder builder) {
        OptionalInt id = Prefork.taskId();
        if (id.isEmpty()) {
            return; // the supervisor never starts Micronaut; a program that did not fork binds as usual
        }
        if (!(inheritedChannel() instanceof ServerSocketChannel)) {
            LOG.warn("prefork worker {}: fd 0 is not a listening socket, so Micronaut binds a port of its own; "
                    + "give forkProcesses ForkOptions.inheritedChannel(true) to serve the shared socket", id.getAsInt());
            return;
        }
        builder.propertySources(PropertySource.of("prefork", Map.of(PREFIX + "fd", 0, PREFIX + "bind", false)));
    }

    private static Channel inheritedChannel() {
        try {
            return System.inheritedChannel();
        } catch (IOException e) {
            LOG.warn("cannot read the channel on fd 0", e);
            return null;
        }
    }
}
