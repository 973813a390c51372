package dev.prefork.spring

import dev.prefork.taskId
import org.slf4j.LoggerFactory
import org.springframework.boot.web.server.ConfigurableWebServerFactory
import org.springframework.boot.web.server.WebServerFactoryCustomizer
import org.springframework.core.env.Environment
import java.lang.reflect.InvocationHandler
import java.lang.reflect.InvocationTargetException
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
internal class ServerHook(private val environment: Environment) : WebServerFactoryCustomizer<ConfigurableWebServerFactory> {
    override fun customize(factory: ConfigurableWebServerFactory) {
        val id = taskId() ?: return
        val socket = SharedSocket.onFd0()
        if (socket != null && managementPortIsOwn()) {
            // Boot starts that server in a child context whose factory this customizer never sees: every worker would bind its port.
            throw PreforkServerException(
                "prefork worker $id serves one shared socket, but Spring Boot's management server has a port of its own " +
                    "(management.server.port=${environment.getProperty("management.server.port")}), which every worker would bind",
                "Serve Actuator on the application's port (leave management.server.port unset), " +
                    "or turn the management server off in workers (management.server.port=-1).",
            )
        }
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
        SharedSocket.hooked = server
        logger.debug("prefork worker {}: {} serves the shared socket {}", id, server, socket.localAddress)
    }

    /** Actuator's own answer (`ManagementPortType.get`, the same class in Boot 3.5 and 4): DIFFERENT when it runs a server of its own. */
    private fun managementPortIsOwn(): Boolean = try {
        val type = Class.forName(MANAGEMENT_PORT_TYPE, false, javaClass.classLoader)
        type.getMethod("get", Environment::class.java).invoke(null, environment).toString() == "DIFFERENT"
    } catch (e: ClassNotFoundException) {
        false // no Actuator: management.server.port means nothing
    }

    internal companion object {
        private val logger = LoggerFactory.getLogger(ServerHook::class.java)

        private const val MANAGEMENT_PORT_TYPE = "org.springframework.boot.actuate.autoconfigure.web.server.ManagementPortType"

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
            invoke(method, factory, array)
        }

        /** [method] on [target]: what it throws, rather than the InvocationTargetException around it. */
        fun invoke(method: Method, target: Any, vararg args: Any?): Any? = try {
            method.invoke(target, *args)
        } catch (e: InvocationTargetException) {
            throw e.cause ?: e
        }
    }
}

/**
 * The shared listening socket that prefork put on this worker's fd 0 (`ForkOptions.inheritedChannel`),
 * and which server took it over. No type of Spring Boot's web modules here: the ready listener
 * reads it in applications that have none (Boot 4 keeps `WebServerFactoryCustomizer` in one).
 */
internal object SharedSocket {
    /** The server that took the shared socket over in this JVM; null: none (yet). */
    @Volatile
    var hooked: String? = null

    fun onFd0(): ServerSocketChannel? = System.inheritedChannel() as? ServerSocketChannel
}
