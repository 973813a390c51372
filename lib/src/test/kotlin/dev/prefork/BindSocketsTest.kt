package dev.prefork

import dev.prefork.testing.ProcFs
import dev.prefork.posix.Fds
import dev.prefork.supervisor.SocketHandoff
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldHaveSize
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import java.net.BindException
import java.net.InetSocketAddress
import java.net.Socket

/** bindSockets in this (non-worker) JVM, and the fd handoff's two halves. */
class BindSocketsTest : FunSpec({
    test("binds a listening socket on a free port with the right local address") {
        val sockets = bindSockets(0, "127.0.0.1")
        try {
            sockets shouldHaveSize 1
            val local = sockets[0].localAddress as InetSocketAddress
            local.address.hostAddress shouldBe "127.0.0.1"
            Socket("127.0.0.1", local.port).use { sockets[0].accept().use { } }
        } finally {
            sockets.forEach { it.close() }
        }
    }

    test("a port in use is a BindException naming address:port, and nothing stays bound") {
        val first = bindSockets(0, "127.0.0.1")
        val port = (first[0].localAddress as InetSocketAddress).port
        try {
            val fdsBefore = ProcFs.openFds().size
            val e = shouldThrow<BindException> { bindSockets(port, "127.0.0.1") }
            e.message shouldContain "127.0.0.1:$port"
            ProcFs.openFds().size shouldBe fdsBefore
        } finally {
            first.forEach { it.close() }
        }
    }

    test("bad arguments are named") {
        shouldThrow<IllegalArgumentException> { bindSockets(70000) }.message shouldBe "port out of range: 70000"
        shouldThrow<IllegalArgumentException> { bindSockets(-1) }.message shouldBe "port out of range: -1"
        shouldThrow<IllegalArgumentException> { bindSockets(0, backlog = 0) }.message shouldBe "backlog <= 0: 0"
        shouldThrow<java.net.UnknownHostException> { bindSockets(0, "no-such-host.invalid") }.message shouldContain "no-such-host.invalid"
    }

    test("reusePort lets two sockets share a port") {
        val a = bindSockets(0, "127.0.0.1", reusePort = true)
        val port = (a[0].localAddress as InetSocketAddress).port
        val b = bindSockets(port, "127.0.0.1", reusePort = true)
        (b[0].localAddress as InetSocketAddress).port shouldBe port
        (a + b).forEach { it.close() }
    }

    test("the supervisor finds a socket's fd, and a worker adopts a copy of it as a ServerSocketChannel") {
        val socket = bindSockets(0, "127.0.0.1").single()
        try {
            val found = SocketHandoff.fdOf(socket)
            java.nio.file.Files.readSymbolicLink(java.nio.file.Path.of("/proc/self/fd/${found.fd}")).toString() shouldContain "socket:"
            val copy = Fds.dupAbove(found.fd, 100)
            val adopted = SocketHandoff.adopt(copy, found.inet6)
            adopted.localAddress shouldBe socket.localAddress
            val port = (socket.localAddress as InetSocketAddress).port
            Socket("127.0.0.1", port).use { adopted.accept().use { } }
            adopted.close()
        } finally {
            socket.close()
        }
    }

    test("taskId is null and cpuCount positive outside a worker") {
        taskId() shouldBe null
        (cpuCount() > 0) shouldBe true
    }
})
