package dev.prefork.spring

import org.springframework.boot.diagnostics.AbstractFailureAnalyzer
import org.springframework.boot.diagnostics.FailureAnalysis

/** A worker's web server cannot serve prefork's shared socket: the start fails, [description] says why and [action] what to do. */
internal class PreforkServerException(val description: String, val action: String) : IllegalStateException("$description. $action")

/** What to do when the application's server is not one prefork-spring-boot can point at the shared socket. */
internal const val SERVERS_ACTION: String = "Serve the application with Tomcat (spring-boot-starter-web, or -webmvc on Spring Boot 4), " +
    "Jetty (spring-boot-starter-jetty) or Reactor Netty (spring-boot-starter-webflux)."

/** Spring Boot's report of a [PreforkServerException] at start: what went wrong, then what to do, instead of a stack trace. */
internal class PreforkFailureAnalyzer : AbstractFailureAnalyzer<PreforkServerException>() {
    override fun analyze(rootFailure: Throwable, cause: PreforkServerException): FailureAnalysis =
        FailureAnalysis("${cause.description}.", cause.action, cause)
}

/** The running Spring Boot's version, for messages. */
internal object SpringBoot {
    fun version(): String = try {
        Class.forName("org.springframework.boot.SpringBootVersion").getMethod("getVersion").invoke(null) as String? ?: "unknown version"
    } catch (e: ReflectiveOperationException) {
        "unknown version"
    }
}
