package dev.prefork.posix

import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe

class NativeBindingTest : FunSpec({
    test("the JDK's FFM on JDK 22 and later, jffi before") {
        // The suite runs on JDK 17 and on JDK 25 in CI: each binding passes every test of the suite.
        Native.posix.name shouldBe if (Runtime.version().feature() >= 22) "ffm" else "jffi"
    }

    test("errno is the failed call's, on the calling thread") {
        val posix = Native.posix
        posix.close(-1) shouldBe -1
        posix.errno() shouldBe 9 // EBADF
        val path = posix.cString("/no/such/file")
        try {
            posix.open(path, Linux.O_RDONLY, 0) shouldBe -1
            posix.errno() shouldBe 2 // ENOENT
        } finally {
            posix.free(path)
        }
        val message = runCatching { Fds.open("/no/such/file", Linux.O_RDONLY) }.exceptionOrNull()?.message
        message shouldBe "open \"/no/such/file\": error=2 (ENOENT), No such file or directory"
    }

    test("memory written is memory read, and arrays are read into and written from at their offset") {
        val posix = Native.posix
        val block = posix.allocate(16)
        try {
            posix.putLong(block, 0x0102030405060708L)
            posix.putInt(block + 8, -5)
            posix.getLong(block) shouldBe 0x0102030405060708L
            posix.getInt(block + 8) shouldBe -5
        } finally {
            posix.free(block)
        }
        val (read, write) = Fds.pipe().let { it[0] to it[1] }
        var writeOpen = true
        try {
            Fds.setNonBlocking(read)
            Fds.write(write, "..hello..".toByteArray(), 2, 5) { "the test pipe" } shouldBe 5
            Fds.available(read) shouldBe 5
            val into = ByteArray(10)
            Fds.read(read, into, 3, 7) { "the test pipe" } shouldBe 5
            String(into, 3, 5) shouldBe "hello"
            Fds.read(read, into, 0, 10) { "the test pipe" } shouldBe 0 // EAGAIN: empty, not the end
            Fds.closeQuietly(write)
            writeOpen = false
            Fds.read(read, into, 0, 10) { "the test pipe" } shouldBe -1
        } finally {
            Fds.closeQuietly(read)
            if (writeOpen) Fds.closeQuietly(write)
        }
    }
})
