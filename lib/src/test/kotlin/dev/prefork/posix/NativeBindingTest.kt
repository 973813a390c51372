package dev.prefork.posix

import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldStartWith

class NativeBindingTest : FunSpec({
    test("prefork's JNI library unless -Dprefork.native names another") {
        // CI runs the suite on JDK 17 and JDK 25 with the JNI binding, and all of it again with jffi on 17
        // and FFM on 25 (lib/pom.xml, execution other-binding).
        val wanted = System.getProperty("prefork.native", "")
        Native.posix.name shouldBe when (wanted) {
            "" -> "jni"
            "jnr" -> "jffi"
            else -> wanted
        }
    }

    test("the JNI library registers a C function for every native method of JniPosix, and fails as the other bindings do") {
        val jni = Native.posix as? JniPosix ?: JniPosix.load() // this JVM may run on another binding
        val natives = JniPosix::class.java.declaredMethods.count { java.lang.reflect.Modifier.isNative(it.modifiers) }
        jni.registeredNatives() shouldBe natives
        shouldThrow<IllegalArgumentException> { jni.allocate(-1) }
        shouldThrow<OutOfMemoryError> { jni.allocate(Long.MAX_VALUE) }
        // On fd -1: without the bounds check, the call would return EBADF's -1 and the test fail, not hang or scribble.
        shouldThrow<IndexOutOfBoundsException> { jni.readArray(-1, ByteArray(4), 2, 3) }
        shouldThrow<IndexOutOfBoundsException> { jni.writeArray(-1, ByteArray(4), -1, 1) }
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

    test("a pseudo-terminal: its window size set and read back, echo off, and EIO read at its master once its end is closed") {
        val opened = Pty.open()
        try {
            opened.path shouldStartWith "/dev/pts/"
            Pty.setWindowSize(opened.master, 132, 43)
            Pty.windowSize(opened.master).toList() shouldBe listOf(132, 43)
            val terminal = Fds.open(opened.path, Linux.O_RDWR or Linux.O_NOCTTY)
            try {
                Pty.windowSize(terminal).toList() shouldBe listOf(132, 43) // the same terminal, from its own end
                Pty.setEcho(opened.master, false)
                withNativeMemory(Linux.TERMIOS_SIZE) { termios ->
                    Native.posix.ioctlInt(terminal, Linux.TCGETS, termios) shouldBe 0
                    Native.posix.getInt(termios + Linux.TERMIOS_LFLAG) and Linux.ECHO shouldBe 0
                }
                Fds.write(terminal, "partial".toByteArray(), 0, 7) { "the terminal" } shouldBe 7
            } finally {
                Fds.closeQuietly(terminal)
            }
            Fds.setNonBlocking(opened.master)
            val into = ByteArray(16)
            Fds.read(opened.master, into, 0, 16, eioEnds = true) { "the master" } shouldBe 7
            String(into, 0, 7) shouldBe "partial"
            Fds.read(opened.master, into, 0, 16, eioEnds = true) { "the master" } shouldBe -1
            val eio = shouldThrow<ErrnoException> { Fds.read(opened.master, into, 0, 16) { "the master" } }
            eio.message shouldBe "read from the master: error=5 (EIO), Input/output error"
        } finally {
            Fds.closeQuietly(opened.master)
        }
        shouldThrow<ErrnoException> { Pty.setWindowSize(opened.master, 80, 24) }.message shouldStartWith "ioctl(TIOCSWINSZ) fd ${opened.master}: error=9 (EBADF)"
    }

    test("CPU affinity: a thread's set read and narrowed, a running process placed; a CPU that does not exist is refused with the thread named") {
        val own = Affinity.of()
        own.size shouldBeGreaterThan 0
        val last = intArrayOf(own.last())
        var narrowed = emptyList<Int>()
        kotlin.concurrent.thread {
            Affinity.set(0, last)
            narrowed = Affinity.of().toList()
        }.join()
        narrowed shouldBe last.toList()
        // A running process, every thread of it; and this thread keeps its own set.
        val sleeper = ProcessBuilder("sleep", "30").start()
        try {
            Affinity.pin(sleeper.pid(), last) shouldBe true
            Affinity.of(sleeper.pid().toInt()).toList() shouldBe last.toList()
            Affinity.of().toList() shouldBe own.toList()
        } finally {
            sleeper.destroyForcibly().waitFor()
        }
        Affinity.pin(sleeper.pid(), own) shouldBe false // gone
        val refused = shouldThrow<ErrnoException> { Affinity.set(0, intArrayOf(100_000)) }
        refused.message shouldBe "sched_setaffinity of thread 0 to CPUs 100000: error=22 (EINVAL), Invalid argument"
        Affinity.of().toList() shouldBe own.toList()
    }
})
