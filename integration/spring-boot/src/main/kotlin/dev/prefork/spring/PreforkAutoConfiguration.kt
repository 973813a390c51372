package dev.prefork.spring

import dev.prefork.Worker
import org.springframework.boot.autoconfigure.AutoConfiguration
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass
import org.springframework.boot.context.event.ApplicationReadyEvent
import org.springframework.boot.web.embedded.tomcat.TomcatServletWebServerFactory
import org.springframework.boot.web.server.WebServerFactoryCustomizer
import org.springframework.context.ApplicationListener
import org.springframework.context.annotation.Bean
import org.springframework.context.annotation.Configuration

/**
 * prefork in a Spring Boot application: add `dev.prefork:prefork-spring-boot` and call
 * `Prefork.forkProcesses` in `main` before `SpringApplication.run`. In a worker:
 * - the worker tells its supervisor it is ready when the application is
 *   ([ApplicationReadyEvent]): with `ForkOptions.explicitReady(true)` a rolling restart then
 *   waits for the whole context, not just the JVM;
 * - Tomcat serves the listening socket the worker inherited on fd 0
 *   (`ForkOptions.inheritedChannel(true)`), shared by every worker, and drains on SIGTERM
 *   ([PreforkTomcat]).
 *
 * Outside a worker (the supervisor never gets this far; a run without forkProcesses) nothing
 * changes.
 */
@AutoConfiguration
public class PreforkAutoConfiguration {
    /** The [WorkerReadyListener] bean: registered in every application, a no-op outside a worker. */
    @Bean
    public fun preforkWorkerReady(): WorkerReadyListener = WorkerReadyListener()

    /** Says `Worker.ready()` once the application is ready. */
    public class WorkerReadyListener : ApplicationListener<ApplicationReadyEvent> {
        /** Calls [Worker.ready], which does nothing outside a worker or when the worker is ready already. */
        override fun onApplicationEvent(event: ApplicationReadyEvent) {
            Worker.ready()
        }
    }

    /** Active when Tomcat and Spring Boot's Tomcat factory are on the class path: Tomcat on the shared socket, with the drain. */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(name = ["org.apache.catalina.startup.Tomcat", "org.springframework.boot.web.embedded.tomcat.TomcatServletWebServerFactory"])
    public class TomcatConfiguration {
        /** Customizes Tomcat's factory in a worker only: its connector serves the inherited socket on fd 0, and drains on SIGTERM. */
        @Bean
        public fun preforkTomcat(): WebServerFactoryCustomizer<TomcatServletWebServerFactory> = PreforkTomcat()
    }
}
