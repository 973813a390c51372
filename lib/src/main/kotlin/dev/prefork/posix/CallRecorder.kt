package dev.prefork.posix

import java.lang.reflect.InvocationHandler
import java.lang.reflect.InvocationTargetException
import java.lang.reflect.Proxy
import java.nio.charset.StandardCharsets
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.StandardOpenOption.APPEND
import java.nio.file.StandardOpenOption.CREATE
import java.util.concurrent.ConcurrentHashMap

/**
 * For prefork's own test suite, which runs the whole suite on the JNI binding and a part of it on
 * the fall-back binding: with `-Dprefork.native.calls=<directory>`, each JVM (fixtures and
 * workers, which inherit the flag, included) appends the name of every [Posix] function it calls
 * for the first time to `<directory>/<binding>-<pid>`, as the call is made, so a process killed
 * with SIGKILL has written what it did. A check after the fall-back pass reads them and fails
 * when some function was never called through that binding. Off, nothing is wrapped.
 */
internal object CallRecorder {
    fun wrap(posix: Posix, directory: Path): Posix {
        Files.createDirectories(directory)
        val file = directory.resolve("${posix.name}-${ProcessHandle.current().pid()}")
        val seen = ConcurrentHashMap.newKeySet<String>()
        val handler = InvocationHandler { _, method, args ->
            if (seen.add(method.name)) {
                Files.write(file, "${method.name}\n".toByteArray(StandardCharsets.UTF_8), CREATE, APPEND)
            }
            try {
                method.invoke(posix, *(args ?: emptyArray()))
            } catch (e: InvocationTargetException) {
                throw e.cause ?: e
            }
        }
        return Proxy.newProxyInstance(Posix::class.java.classLoader, arrayOf(Posix::class.java), handler) as Posix
    }

    /** The functions a binding implements: every method of [Posix] but its name. */
    val functions: Set<String> = Posix::class.java.methods.map { it.name }.filter { it != "getName" }.toSet()
}
