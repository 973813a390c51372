package dev.prefork.posix

import dev.prefork.Subprocess

/** A fresh JVM's first spawn, as a command-line tool makes it: prints the binding that made it and the exit code. */
fun main() {
    val child = Subprocess.builder("/bin/true").startDetached()
    val code = child.use { it.waitForExitBlocking() }
    println("binding=${Native.posix.name} exit=$code")
}
