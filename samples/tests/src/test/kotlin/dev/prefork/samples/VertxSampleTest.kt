package dev.prefork.samples

import dev.prefork.testing.SampleServerTests

/** Vert.x 5 (Netty 4.2, NIO), on the vertx-stack-depchain BOM: prefork-vertx's transport serves the shared socket; Vert.x closed once drained. */
class VertxSampleTest : SampleServerTests("Vert.x 5, Netty", sampleJar("vertx", "prefork-vertx-sample.jar"))
