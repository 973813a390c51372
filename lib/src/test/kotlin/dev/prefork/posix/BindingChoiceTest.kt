package dev.prefork.posix

import dev.prefork.testing.FixtureJvm
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldNotContain
import java.nio.file.Files
import java.nio.file.Path

/** Which C binding a fresh JVM ends up with, and what it says when its first choice is not to be had. */
class BindingChoiceTest : FunSpec({
    val fixture = "dev.prefork.posix.BindingFixtureKt"
    val fallback = if (Runtime.version().feature() >= 22) "ffm" else "jffi"
    val fallbackName = if (fallback == "ffm") "FFM" else "jffi"
    // A directory no one can create a file in, root included (the tests may run as root), so the JDK
    // does not warn about java.io.tmpdir itself, as it does for one that does not exist.
    val nowhere = "/proc"

    fun run(vararg flags: String): FixtureJvm = FixtureJvm(fixture, emptyList(), jvmFlags = flags.toList())

    test("the JNI library by default: extracted, loaded, and deleted, with nothing said") {
        val tmp = Files.createTempDirectory("prefork-binding")
        try {
            run("-Djava.io.tmpdir=$tmp", "-Dprefork.native=").use { jvm ->
                jvm.exitCode() shouldBe 0
                jvm.stdout().trim() shouldBe "binding=jni exit=0"
                jvm.stderr() shouldBe ""
            }
            Files.list(tmp).use { it.toList() } shouldBe emptyList()
        } finally {
            Files.deleteIfExists(tmp)
        }
    }

    test("a relative java.io.tmpdir is taken from the working directory") {
        // Surefire runs in the module's directory, which has target/.
        run("-Djava.io.tmpdir=target", "-Dprefork.native=").use { jvm ->
            jvm.exitCode() shouldBe 0
            jvm.stdout().trim() shouldBe "binding=jni exit=0"
            jvm.stderr() shouldBe ""
        }
    }

    test("a java.io.tmpdir that cannot take the library: a warning naming it, and the spawn made through $fallback") {
        run("-Djava.io.tmpdir=$nowhere", "-Dprefork.native=").use { jvm ->
            jvm.exitCode() shouldBe 0
            jvm.stdout().trim() shouldBe "binding=$fallback exit=0"
            jvm.stderr() shouldContain "prefork's JNI library did not load (java.lang.UnsatisfiedLinkError: cannot write prefork's JNI library to $nowhere"
            jvm.stderr() shouldContain "calling C through $fallbackName"
        }
    }

    test("-Dprefork.native.library loads the library from where it is, without java.io.tmpdir") {
        val library = Path.of(JniPosix::class.java.getResource("native/linux-${System.getProperty("os.arch")}/libprefork.so")!!.toURI())
        run("-Djava.io.tmpdir=$nowhere", "-Dprefork.native=", "-Dprefork.native.library=$library").use { jvm ->
            jvm.exitCode() shouldBe 0
            jvm.stdout().trim() shouldBe "binding=jni exit=0"
            jvm.stderr() shouldBe ""
        }
    }

    test("-Dprefork.native=jni fails rather than fall back, naming why; a name it does not know fails naming it") {
        run("-Djava.io.tmpdir=$nowhere", "-Dprefork.native=jni").use { jvm ->
            (jvm.exitCode() == 0) shouldBe false
            jvm.stdout() shouldNotContain "binding="
            jvm.stderr() shouldContain "-Dprefork.native=jni: that binding cannot be used (java.lang.UnsatisfiedLinkError: cannot write prefork's JNI library to $nowhere"
        }
        run("-Dprefork.native=jna").use { jvm ->
            (jvm.exitCode() == 0) shouldBe false
            jvm.stderr() shouldContain "-Dprefork.native=jna: expected jni, ffm or jffi"
        }
    }

    test("-Dprefork.native=jffi, and =ffm on JDK 22+ (where JDK 17-21 refuse it)") {
        // jffi's Unsafe calls warn on JDK 23+ unless allowed
        val jffiFlags = listOfNotNull("-Dprefork.native=jffi", "--sun-misc-unsafe-memory-access=allow".takeIf { Runtime.version().feature() >= 23 })
        run(*jffiFlags.toTypedArray()).use { jvm ->
            jvm.exitCode() shouldBe 0
            jvm.stdout().trim() shouldBe "binding=jffi exit=0"
        }
        run("-Dprefork.native=ffm").use { jvm ->
            if (Runtime.version().feature() >= 22) {
                jvm.exitCode() shouldBe 0
                jvm.stdout().trim() shouldBe "binding=ffm exit=0"
            } else {
                (jvm.exitCode() == 0) shouldBe false
                jvm.stderr() shouldContain "-Dprefork.native=ffm: that binding cannot be used (java.lang.IllegalStateException: FFM needs JDK 22 or later"
            }
        }
    }
})
