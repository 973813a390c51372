package dev.prefork.supervisor

import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.property.Arb
import io.kotest.property.arbitrary.boolean
import io.kotest.property.arbitrary.choice
import io.kotest.property.arbitrary.int
import io.kotest.property.arbitrary.list
import io.kotest.property.arbitrary.map
import io.kotest.property.arbitrary.pair
import io.kotest.property.checkAll

class WorkerEnvironmentTest : FunSpec({
    test("socket groups survive the trip through an environment variable") {
        val shared: Arb<WorkerEnvironment.Group> =
            Arb.list(Arb.pair(Arb.int(3..1000), Arb.boolean()), 1..4).map { WorkerEnvironment.Group.Shared(it) }
        val reusePort: Arb<WorkerEnvironment.Group> = Arb.int(1..65535).map { WorkerEnvironment.Group.ReusePort(it) }
        checkAll(Arb.list(Arb.choice(shared, reusePort), 0..5)) { groups ->
            WorkerEnvironment.decode(WorkerEnvironment.encode(groups)) shouldBe groups
        }
    }

    test("the encoding is readable") {
        WorkerEnvironment.encode(
            listOf(WorkerEnvironment.Group.Shared(listOf(5 to false, 6 to true)), WorkerEnvironment.Group.ReusePort(8888)),
        ) shouldBe "s5/4,6/6;r8888"
    }
})
