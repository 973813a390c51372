package dev.prefork.samples

import dev.prefork.testing.SampleServerTests

/** Spring Boot 4.0 (Tomcat), on spring-boot-starter-parent: prefork-spring-boot points Tomcat at the inherited shared socket. */
class SpringBootSampleTest : SampleServerTests("Spring Boot 4.0, Tomcat", sampleJar("spring-boot", "prefork-spring-boot-sample.jar"), startSeconds = 120)

/** The same application on Jetty, under Spring Boot 4.1 (spring-boot-starter-jetty): Boot's connector opened on the shared socket. */
class SpringBootJettySampleTest : SampleServerTests("Spring Boot 4.1, Jetty", sampleJar("spring-boot-jetty", "prefork-spring-boot-jetty-sample.jar"), startSeconds = 120)

/** The same application on WebFlux, under Spring Boot 4.0: Reactor Netty's server channel over the shared socket. */
class SpringBootWebFluxSampleTest : SampleServerTests("Spring Boot 4.0, WebFlux (Reactor Netty)", sampleJar("spring-boot-webflux", "prefork-spring-boot-webflux-sample.jar"), startSeconds = 120)

/** The same application under Spring Boot 3.5 (Tomcat 10.1), on the floor that Boot 3.5 pins: Kotlin 1.9.25, kotlinx-coroutines 1.8.1. */
class SpringBoot35SampleTest : SampleServerTests("Spring Boot 3.5, Tomcat", sampleJar("spring-boot-3.5", "prefork-spring-boot-3.5-sample.jar"), startSeconds = 120)

/** Ktor 3 on Netty (native epoll), on the Ktor BOM: workers on the shared socket through prefork-netty. */
class KtorSampleTest : SampleServerTests("Ktor 3, Netty", sampleJar("ktor", "prefork-ktor-sample.jar"))

/** Jetty 12.1, on Jetty's BOM: connectors opened on the shared socket, graceful stop on SIGTERM. */
class JettySampleTest : SampleServerTests("Jetty 12", sampleJar("jetty", "prefork-jetty-sample.jar"))
