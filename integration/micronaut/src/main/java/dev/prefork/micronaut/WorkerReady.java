package dev.prefork.micronaut;

import dev.prefork.Worker;
import io.micronaut.context.event.ApplicationEventListener;
import io.micronaut.runtime.server.event.ServerStartupEvent;
import jakarta.inject.Singleton;

/**
 * Tells the supervisor the worker serves once Micronaut's HTTP server has started: every
 * listener is registered on its socket then. With {@code ForkOptions.Builder.explicitReady(true)}
 * a rolling restart stops an old worker only after its replacement got here.
 */
@Singleton
final class WorkerReady implements ApplicationEventListener<ServerStartupEvent> {
    @Override
    public void onApplicationEvent(ServerStartupEvent event) {
        Worker.ready();
    }
}
