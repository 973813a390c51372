package dev.prefork.samples.jetty

import dev.prefork.testing.SampleServerTests

/** `prefork-jetty-sample.jar`: Jetty 12 connectors opened on the shared socket, graceful stop on SIGTERM. */
class JettySampleTest : SampleServerTests("Jetty")
