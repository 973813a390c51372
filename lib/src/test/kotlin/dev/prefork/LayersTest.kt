package dev.prefork

import com.tngtech.archunit.core.importer.ClassFileImporter
import com.tngtech.archunit.core.importer.ImportOption
import com.tngtech.archunit.library.Architectures.layeredArchitecture
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.ints.shouldBeGreaterThan

/**
 * prefork's packages, read from the compiled classes, point down only:
 * `log` (the bottom: logging) <- `posix` (the only code that calls C) <- `reaper` (the reactor
 * thread and the background scope) <- `io` (pipe pumps) <- the root package (Subprocess and
 * the entry points) and `supervisor`, which use each other: `forkProcesses` starts a
 * Supervisor, which starts workers as Subprocesses.
 */
class LayersTest : FunSpec({
    test("log <- posix <- reaper <- io <- the root package and supervisor: no import points up") {
        val classes = ClassFileImporter().withImportOption(ImportOption.DoNotIncludeTests()).importPackages("dev.prefork")
        classes.size shouldBeGreaterThan 100
        layeredArchitecture().consideringOnlyDependenciesInLayers()
            .layer("log").definedBy("dev.prefork.log..")
            .layer("posix").definedBy("dev.prefork.posix..")
            .layer("reaper").definedBy("dev.prefork.reaper..")
            .layer("io").definedBy("dev.prefork.io..")
            .layer("api").definedBy("dev.prefork")
            .layer("supervisor").definedBy("dev.prefork.supervisor..")
            .whereLayer("api").mayOnlyBeAccessedByLayers("supervisor")
            .whereLayer("supervisor").mayOnlyBeAccessedByLayers("api")
            .whereLayer("io").mayOnlyBeAccessedByLayers("api", "supervisor")
            .whereLayer("reaper").mayOnlyBeAccessedByLayers("io", "api", "supervisor")
            .whereLayer("posix").mayOnlyBeAccessedByLayers("reaper", "io", "api", "supervisor")
            .check(classes)
    }
})
