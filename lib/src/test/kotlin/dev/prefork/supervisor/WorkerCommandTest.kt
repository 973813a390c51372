package dev.prefork.supervisor

import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe

class WorkerCommandTest : FunSpec({
    fun cmdline(vararg args: String) = args.joinToString("") { "$it\u0000" }.toByteArray()

    test("keeps empty and spaced arguments, puts the launcher's absolute path first, adds the one flag once") {
        WorkerCommand.fromCmdline(cmdline("java", "-Xmx1g", "-cp", "a.jar", "Main", "", "x y", ""), "/opt/jdk/bin/java") shouldBe
            listOf("/opt/jdk/bin/java", WorkerCommand.ADD_OPENS, "-Xmx1g", "-cp", "a.jar", "Main", "", "x y", "")
        WorkerCommand.fromCmdline(cmdline("java", WorkerCommand.ADD_OPENS, "-jar", "app.jar"), null) shouldBe
            listOf("java", WorkerCommand.ADD_OPENS, "-jar", "app.jar")
    }

    test("no flag for a jar whose manifest opens the package: the JVM keeps its archived module graph") {
        fun jar(manifest: String): String {
            val file = java.io.File.createTempFile("worker-command", ".jar").apply { deleteOnExit() }
            java.util.jar.JarOutputStream(file.outputStream(), java.util.jar.Manifest("Manifest-Version: 1.0\n$manifest".byteInputStream())).close()
            return file.path
        }
        val opens = jar("Main-Class: Main\nAdd-Opens: java.base/java.lang java.base/sun.nio.ch\n")
        WorkerCommand.fromCmdline(cmdline("java", "-Xmx1g", "-jar", opens, "--port=1"), null) shouldBe listOf("java", "-Xmx1g", "-jar", opens, "--port=1")
        val plain = jar("Main-Class: Main\n")
        WorkerCommand.fromCmdline(cmdline("java", "-jar", plain), null) shouldBe listOf("java", WorkerCommand.ADD_OPENS, "-jar", plain)
        // An application argument that looks like the flag is not the flag.
        WorkerCommand.fromCmdline(cmdline("java", "-cp", "a.jar", "Main", WorkerCommand.ADD_OPENS), null) shouldBe
            listOf("java", WorkerCommand.ADD_OPENS, "-cp", "a.jar", "Main", WorkerCommand.ADD_OPENS)
    }

    test("a launcher that is not java is re-executed as it is") {
        WorkerCommand.fromCmdline(cmdline("/opt/app/bin/server", "--port", "1"), "/opt/app/bin/server") shouldBe
            listOf("/opt/app/bin/server", "--port", "1")
    }

    test("this JVM's own command line starts with its java launcher") {
        val own = WorkerCommand.ofThisJvm()
        own[0] shouldBe ProcessHandle.current().info().command().get()
        own.count { it.startsWith("--add-opens=java.base/sun.nio.ch") } shouldBe 1 // Surefire passes it already
    }
})
