package dev.prefork.spring

import dev.prefork.taskId
import org.slf4j.LoggerFactory
import org.springframework.boot.web.server.ConfigurableWebServerFactory
import org.springframework.boot.web.server.WebServerFactoryCustomizer
import java.lang.reflect.InvocationHandler
import java.lang.reflect.Method
import java.lang.reflect.Proxy
import java.nio.channels.ServerSocketChannel

/**
 * Points the application's web server at the shared socket on fd 0, in a worker only. Spring
 * Boot 4 moved each server's factory and customizer types into a module and package of its own
 * (`org.springframework.boot.tomcat`, `.jetty`, `.reactor.netty`; Boot 3.5 has them under
 * `org.springframework.boot.web.embedded`), but kept their methods: the server is recognized by
 * the customizer its factory takes (`addConnectorCustomizers(TomcatConnectorCustomizer...)`,
 * `addServerCustomizers(JettyServerCustomizer...)` or `addServerCustomizers(NettyServerCustomizer...)`),
 * and the customizer is a proxy of that interface, so one class serves every Boot line. A
 * factory none of these fits fails the start ([PreforkServerException]): it would bind the
 * port itself, and every worker but the first would fail with "Port already in use". Each
 * server's own classes are touched only in its hook, so the others need not be on the class path.
 */
internal class ServerHook : WebServerFactoryCustomizer<ConfigurableWebServerFactory> {
    override fun customize(factory: ConfigurableWebServerFactory) {
        val id = taskId() ?: return
        val socket = SharedSocket.onFd0()
        if (socket == null) {
            logger.warn(
                "prefork worker {}: fd 0 is not a listening socket, so {} binds a port of its own; " +
                    "give forkProcesses ForkOptions.inheritedChannel(true) to serve the shared socket",
                id, factory.javaClass.simpleName,
            )
            return
        }
        val server = when {
            adder(factory, "addConnectorCustomizers", "TomcatConnectorCustomizer") != null -> {
                addCustomizer(factory, "addConnectorCustomizers", "TomcatConnectorCustomizer") { connector ->
                    TomcatHook.attach(connector)
                    null
                }
                "Tomcat"
            }
            adder(factory, "addServerCustomizers", "JettyServerCustomizer") != null -> {
                addCustomizer(factory, "addServerCustomizers", "JettyServerCustomizer") { server ->
                    JettyHook.attach(server, socket)
                    null
                }
                "Jetty"
            }
            adder(factory, "addServerCustomizers", "NettyServerCustomizer") != null -> {
                ReactorNettyHook.attach(factory, socket)
                "Reactor Netty"
            }
            else -> throw PreforkServerException(
                "prefork worker $id cannot serve the shared socket with ${factory.javaClass.name} " +
                    "(Spring Boot ${SpringBoot.version()}): prefork-spring-boot knows Tomcat, Jetty and Reactor Netty",
                SERVERS_ACTION,
            )
        }
        hooked = server
        logger.debug("prefork worker {}: {} serves the shared socket {}", id, server, socket.localAddress)
    }

    internal companion object {
        private val logger = LoggerFactory.getLogger(ServerHook::class.java)

        const val SERVERS_ACTION = "Serve the application with Tomcat (spring-boot-starter-web, or -webmvc on Spring Boot 4), " +
            "Jetty (spring-boot-starter-jetty) or Reactor Netty (spring-boot-starter-webflux)."

        /** The server that took the shared socket over in this JVM; null: none (yet). */
        @Volatile
        var hooked: String? = null

        /** The factory's `name(X...)` where X is named [customizer], or null. */
        fun adder(factory: Any, name: String, customizer: String): Method? = factory.javaClass.methods.firstOrNull {
            it.name == name && it.parameterCount == 1 && it.parameterTypes[0].isArray &&
                it.parameterTypes[0].componentType.simpleName == customizer
        }

        /**
         * Calls the factory's `name(X...)` with one X, a proxy whose single abstract method runs
         * [action] on its argument and returns what [action] returns (a `NettyServerCustomizer`
         * is a `Function` and must).
         */
        fun addCustomizer(factory: Any, name: String, customizer: String, action: (Any) -> Any?) {
            val method = checkNotNull(adder(factory, name, customizer)) { "${factory.javaClass.name} has no $name($customizer...)" }
            val type = method.parameterTypes[0].componentType
            val handler = InvocationHandler { proxy, called, args ->
                when {
                    called.declaringClass == Any::class.java -> when (called.name) {
                        "equals" -> proxy === args?.get(0)
                        "hashCode" -> System.identityHashCode(proxy)
                        else -> "prefork's ${type.simpleName}"
                    }
                    called.isDefault -> InvocationHandler.invokeDefault(proxy, called, *(args ?: emptyArray()))
                    else -> action(args!![0])
                }
            }
            val array = java.lang.reflect.Array.newInstance(type, 1)
            java.lang.reflect.Array.set(array, 0, Proxy.newProxyInstance(type.classLoader, arrayOf(type), handler))
            method.invoke(factory, array)
        }
    }
}

/** The shared listening socket that prefork put on this worker's fd 0 (`ForkOptions.inheritedChannel`), or null. */
internal object SharedSocket {
    fun onFd0(): ServerSocketChannel? = System.inheritedChannel() as? ServerSocketChannel
}
