package dev.prefork.supervisor

import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe

class WorkerCpusTest : FunSpec({
    fun cores(plan: WorkerCpus, workers: Int) = (0 until workers).map { WorkerCpus.ranges(plan.coresFor(it, workers)!!) }

    test("the processors are shared out, the first ids taking the remainder, at least 1 each; a spare gets the smallest share") {
        val plan = WorkerCpus(8, IntArray(8) { it }, tellProcessors = true)
        (0 until 3).map { plan.processorsFor(it, 3) } shouldBe listOf(3, 3, 2)
        (0 until 4).map { plan.processorsFor(it, 4) } shouldBe listOf(2, 2, 2, 2)
        plan.processorsFor(null, 3) shouldBe 2
        (0 until 10).map { plan.processorsFor(it, 10) }.toSet() shouldBe setOf(1)
        WorkerCpus(1, intArrayOf(0), true).processorsFor(0, 1) shouldBe 1
    }

    test("pinned, the CPUs are cut into contiguous slices; with more workers than CPUs, one CPU each, in turn") {
        val cpus = intArrayOf(0, 1, 2, 3, 8, 9, 10)
        val plan = WorkerCpus(7, cpus, tellProcessors = true)
        cores(plan, 1) shouldBe listOf("0-3,8-10")
        cores(plan, 2) shouldBe listOf("0-3", "8-10")
        cores(plan, 3) shouldBe listOf("0-2", "3,8", "9-10")
        cores(plan, 9) shouldBe listOf("0", "1", "2", "3", "8", "9", "10", "0", "1")
        WorkerCpus(2, intArrayOf(0, 1), false).coresFor(0, 2)!!.toList() shouldBe listOf(0)
        WorkerCpus(2, null, true).coresFor(0, 2) shouldBe null
    }

    test("the flag goes right after the launcher, with the worker's share; not at all when off") {
        val command = listOf("/jdk/bin/java", "-Xmx1g", "-jar", "app.jar", "--port=1")
        WorkerCpus(4, null, true).command(command, 1, 2) shouldBe listOf("/jdk/bin/java", "-XX:ActiveProcessorCount=2", "-Xmx1g", "-jar", "app.jar", "--port=1")
        WorkerCpus(4, null, true).command(command, null, 3) shouldBe listOf("/jdk/bin/java", "-XX:ActiveProcessorCount=1", "-Xmx1g", "-jar", "app.jar", "--port=1")
        WorkerCpus(4, intArrayOf(0), false).command(command, 1, 2) shouldBe command
    }

    test("a processor count the command or the launcher's variables set already, or a command that is no java launcher, is left alone") {
        val java = listOf("/jdk/bin/java", "-jar", "app.jar")
        WorkerCpus.setsProcessors(java, emptyMap()) shouldBe false
        WorkerCpus.setsProcessors(listOf("/jdk/bin/java", "-XX:ActiveProcessorCount=3", "-jar", "app.jar"), emptyMap()) shouldBe true
        // The application's own argument is not a JVM option.
        WorkerCpus.setsProcessors(java + "-XX:ActiveProcessorCount=3", emptyMap()) shouldBe false
        for (variable in listOf("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS")) {
            WorkerCpus.setsProcessors(java, mapOf(variable to "-Xss1m -XX:ActiveProcessorCount=2")) shouldBe true
        }
        WorkerCpus.setsProcessors(listOf("/opt/app/bin/server", "--port", "1"), emptyMap()) shouldBe true
    }

    test("CPU lists read as taskset writes them") {
        WorkerCpus.ranges(intArrayOf(0)) shouldBe "0"
        WorkerCpus.ranges(intArrayOf(0, 1, 2, 5, 7, 8)) shouldBe "0-2,5,7-8"
    }
})
