package dev.prefork.samples.ktor

import dev.prefork.testing.SampleServerTests

/** `prefork-ktor-sample.jar`: Ktor 3 on Netty (native epoll), workers on the shared socket through prefork-netty. */
class KtorSampleTest : SampleServerTests("Ktor")
