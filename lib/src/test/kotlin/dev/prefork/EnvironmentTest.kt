package dev.prefork

import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain

class EnvironmentTest : FunSpec({
    test("add, override and remove on top of the inherited environment") {
        val inherited = System.getenv("PATH")!!
        val done = Subprocess.builder("env").env("RUN_TEST_ADDED", "a=b c").env("HOME", "/override").removeEnv("PATH").run()
        val lines = done.stdoutText()!!.lines()
        lines shouldContainLine "RUN_TEST_ADDED=a=b c"
        lines shouldContainLine "HOME=/override"
        lines.none { it.startsWith("PATH=") } shouldBe true
        // Everything else is still inherited.
        lines.size shouldBeGreaterThan 2
        Subprocess.builder("sh", "-c", "printf %s \"\$PATH\"").run().stdoutText() shouldBe inherited
    }

    test("environment() is live, and starts as the map given to env(Map)") {
        val builder = Subprocess.builder("sh", "-c", "printf '%s|%s' \"\$ONE\" \"\$TWO\"").env(mapOf("ONE" to "1", "PATH" to System.getenv("PATH")))
        builder.environment()["TWO"] = "2"
        builder.run().stdoutText() shouldBe "1|2"
        builder.environment().remove("ONE")
        builder.run().stdoutText() shouldBe "|2"
        builder.environment().containsKey("HOME") shouldBe false
    }

    test("bad names and values are refused, naming the variable") {
        val b = Subprocess.builder("true")
        shouldThrow<IllegalArgumentException> { b.env("A=B", "x") }.message shouldBe "'=' in environment variable name: \"A=B\""
        shouldThrow<IllegalArgumentException> { b.env("", "x") }.message shouldBe "environment variable name is empty"
        shouldThrow<IllegalArgumentException> { b.env("A\u0000", "x") }.message shouldContain "NUL character in environment variable name"
        shouldThrow<IllegalArgumentException> { b.env("GOOD", "x\u0000y") }.message shouldBe "NUL character in the value of environment variable \"GOOD\""
        shouldThrow<IllegalArgumentException> { b.env(mapOf("X=Y" to "1")) }.message shouldBe "'=' in environment variable name: \"X=Y\""
        // An edit straight into the map is checked when the child starts, and nothing starts.
        b.environment()["BAD=NAME"] = "1"
        shouldThrow<IllegalArgumentException> { b.startDetached() }.message shouldBe "'=' in environment variable name: \"BAD=NAME\""
        b.environment().remove("BAD=NAME")
        b.environment()["V"] = "a\u0000b"
        shouldThrow<IllegalArgumentException> { b.run() }.message shouldBe "NUL character in the value of environment variable \"V\""
    }
})

private infix fun List<String>.shouldContainLine(line: String) {
    if (line !in this) throw AssertionError("no line \"$line\" in $this")
}
