package dev.prefork.samples

import dev.prefork.testing.SampleServerTests

/** Micronaut 4 (Netty), on micronaut-parent: each worker's listener serves the shared socket on fd 0, through prefork-micronaut. */
class MicronautSampleTest : SampleServerTests("Micronaut 4, Netty", sampleJar("micronaut", "prefork-micronaut-sample.jar"))
