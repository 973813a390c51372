package dev.prefork.posix

import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.property.Arb
import io.kotest.property.arbitrary.int
import io.kotest.property.checkAll

/** Decoding of raw wait statuses as Linux encodes them (see `man 2 wait`). */
class WaitResultTest : FunSpec({
    fun decode(status: Int) = WaitResult(status, 0, 0, 0)

    test("exit codes 0..255") {
        checkAll(Arb.int(0..255)) { code ->
            val r = decode(code shl 8)
            r.exited shouldBe true
            r.signaled shouldBe false
            r.exitCode shouldBe code
            r.returnCode shouldBe code
        }
    }

    test("signal deaths, with and without core dump") {
        checkAll(Arb.int(1..64), Arb.int(0..1)) { signal, core ->
            val r = decode(signal or (core shl 7))
            r.exited shouldBe false
            r.signaled shouldBe true
            r.termSignal shouldBe signal
            r.coreDumped shouldBe (core == 1)
            r.returnCode shouldBe -signal
        }
    }

    test("a stopped status (0x7f) is neither exit nor signal death") {
        val r = decode((19 shl 8) or 0x7f)
        r.signaled shouldBe false
        r.exited shouldBe false
    }
})
