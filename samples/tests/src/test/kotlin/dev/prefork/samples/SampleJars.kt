package dev.prefork.samples

import java.nio.file.Path

/** `samples/<module>/target/<jar>`, as the sample module named [module] built it. */
fun sampleJar(module: String, jar: String): Path =
    Path.of(checkNotNull(System.getProperty("prefork.samples.dir")) { "system property prefork.samples.dir is not set" }, module, "target", jar)
