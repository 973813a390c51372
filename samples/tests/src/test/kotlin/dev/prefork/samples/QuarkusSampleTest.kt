package dev.prefork.samples

import dev.prefork.testing.SampleServerTests

/** Quarkus 3.33 (Vert.x 4.5), on the Quarkus BOM: prefork-quarkus's Vert.x transport serves the shared socket. */
class QuarkusSampleTest : SampleServerTests("Quarkus 3, Vert.x", sampleJar("quarkus", "prefork-quarkus-sample.jar"))
