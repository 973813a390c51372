package dev.prefork.spring

import dev.prefork.Worker
import dev.prefork.taskId
import org.springframework.boot.autoconfigure.AutoConfiguration
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass
import org.springframework.boot.context.event.ApplicationReadyEvent
import org.springframework.boot.web.server.ConfigurableWebServerFactory
import org.springframework.boot.web.server.WebServerFactoryCustomizer
import org.springframework.context.ApplicationListener
import org.springframework.context.annotation.Bean
import org.springframework.context.annotation.Configuration
import org.springframework.core.env.Environment

/**
 * prefork in a Spring Boot 3.5, 4.0 or 4.1 application: add `dev.prefork:prefork-spring-boot`
 * and call `Prefork.forkProcesses` in `main` before `SpringApplication.run`, with
 * `ForkOptions.inheritedChannel(true)` so that each worker gets the shared listening socket on
 * its fd 0. In a worker:
 * - the web server serves that socket, shared by every worker, and drains on SIGTERM: Tomcat,
 *   Jetty or Reactor Netty (WebFlux), servlet or reactive stack alike;
 * - the worker tells its supervisor it is ready when the application is
 *   ([ApplicationReadyEvent]): with `ForkOptions.explicitReady(true)` a rolling restart then
 *   waits for the whole context, not just the JVM;
 * - a server that cannot be hooked (another server, an unknown Spring Boot) fails the start
 *   with one message that says which and what to do, rather than bind the port itself.
 *
 * Outside a worker (the supervisor never gets this far; a run without forkProcesses) nothing
 * changes.
 */
@AutoConfiguration
public class PreforkAutoConfiguration {
    /** The [WorkerReadyListener] bean: registered in every application, a no-op outside a worker. Spring calls it; applications need not. */
    @Bean
    public fun preforkWorkerReady(): WorkerReadyListener = WorkerReadyListener()

    /**
     * Says `Worker.ready()` once the application is ready. In a worker whose fd 0 is the shared
     * socket, it first checks that a web server took the socket over, and fails the start if none did.
     * Public because Spring instantiates it; not meant to be used or excluded by name.
     */
    public class WorkerReadyListener : ApplicationListener<ApplicationReadyEvent> {
        /** Calls [Worker.ready], which does nothing outside a worker or when the worker is ready already. */
        override fun onApplicationEvent(event: ApplicationReadyEvent) {
            val id = taskId()
            if (id != null && SharedSocket.onFd0() != null && SharedSocket.hooked == null) {
                throw PreforkServerException(
                    "prefork worker $id has the shared listening socket on fd 0 (ForkOptions.inheritedChannel), " +
                        "but no web server of this application took it over (Spring Boot ${SpringBoot.version()})",
                    "$SERVERS_ACTION Or, if this application serves no HTTP, leave out ForkOptions.inheritedChannel(true).",
                )
            }
            Worker.ready()
        }
    }

    /**
     * Active where Spring Boot's web server customizers are (3.5, 4.0 and 4.1 alike): the server
     * factory of the application, whichever it is, is customized in a worker only. Public because
     * Spring reads it; not meant to be used or excluded by name.
     */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(name = ["org.springframework.boot.web.server.WebServerFactoryCustomizer"])
    public class WebServerConfiguration {
        /** Points Tomcat, Jetty or Reactor Netty at the shared socket in a worker, with the drain; fails for a server it cannot hook. */
        @Bean
        public fun preforkWebServer(environment: Environment): WebServerFactoryCustomizer<ConfigurableWebServerFactory> = ServerHook(environment)
    }
}
