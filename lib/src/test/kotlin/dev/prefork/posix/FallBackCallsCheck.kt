package dev.prefork.posix

import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import java.nio.file.Files
import java.nio.file.Path
import kotlin.io.path.name
import kotlin.io.path.readLines

/**
 * Run by lib/pom.xml's execution fall-back-calls, after the fall-back pass (execution
 * other-binding), which runs a part of the suite on the binding this JDK falls back to with
 * `-Dprefork.native.calls` set ([CallRecorder]): every C function prefork declares was called
 * through that binding, by the tests or by the fixtures and workers they started. Not named
 * `*Test`: it checks what another execution did, so the suite's own passes do not run it.
 */
class FallBackCallsCheck : FunSpec({
    test("the fall-back pass called every C function of Posix through the fall-back binding") {
        val binding = System.getProperty("prefork.native")
        val directory = Path.of(System.getProperty("prefork.native.calls"))
        val called = Files.list(directory).use { files ->
            files.filter { it.name.startsWith("$binding-") }.toList().flatMap { it.readLines() }.toSet()
        }
        withClue(
            "C functions the fall-back pass on $binding never called (records in $directory); add a spec that calls " +
                "them to <other.binding.tests> in lib/pom.xml, or, running only part of the suite, pass -Dfall-back-calls.skip=true",
        ) {
            (CallRecorder.functions - called).sorted().shouldBeEmpty()
        }
    }
})
