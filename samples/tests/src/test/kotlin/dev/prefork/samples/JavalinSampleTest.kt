package dev.prefork.samples

import dev.prefork.testing.SampleServerTests

/** Javalin 7 (Jetty 12.1): the connector Javalin adds, opened on the shared socket by prefork-jetty; Javalin stopped by its shutdown hook. */
class JavalinSampleTest : SampleServerTests("Javalin 7, Jetty", sampleJar("javalin", "prefork-javalin-sample.jar"))
