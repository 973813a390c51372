package dev.prefork.samples.spring

import dev.prefork.testing.SampleServerTests

/** `prefork-spring-boot-sample.jar`: Spring Boot 3 with Tomcat on the inherited shared socket, through prefork-spring-boot. */
class SpringBootSampleTest : SampleServerTests("Spring Boot", startSeconds = 120)
