package dev.prefork.testing

import java.io.ByteArrayOutputStream
import java.io.IOException
import java.io.InputStream
import java.net.Socket

/**
 * GET [path] from [host]:[port] on a fresh connection, over HTTP/1.0, or with [http11] over
 * HTTP/1.1 with `Connection: close` (for servers that refuse HTTP/1.0, as Helidon 4 does); the
 * body of a 200 answer, or [IOException] when the connection fails, closes early or the status is
 * not 200. An HTTP/1.1 answer ends where its `Content-Length` says, whether or not the server
 * closes the connection then (Helidon 4.5 leaves that to the client).
 */
fun get(port: Int, path: String = "/", host: String = "127.0.0.1", timeoutMillis: Int = 10_000, http11: Boolean = false): String {
    Socket(host, port).use { socket ->
        socket.soTimeout = timeoutMillis
        val request = if (http11) "GET $path HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n\r\n" else "GET $path HTTP/1.0\r\nHost: $host\r\n\r\n"
        socket.getOutputStream().write(request.toByteArray())
        val response = if (http11) readAnswer(socket.getInputStream()) else socket.getInputStream().readAllBytes().decodeToString()
        val split = response.indexOf("\r\n\r\n")
        if (!Regex("^HTTP/1\\.[01] 200").containsMatchIn(response) || split < 0) throw IOException("bad response: \"$response\"")
        return response.substring(split + 4)
    }
}

/** An HTTP answer up to the end of the body its `Content-Length` gives, or to the end of the stream without one. */
private fun readAnswer(input: InputStream): String {
    val read = ByteArrayOutputStream()
    val buffer = ByteArray(8192)
    while (true) {
        val bytes = read.toByteArray()
        val head = bytes.toString(Charsets.ISO_8859_1).substringBefore("\r\n\r\n", missingDelimiterValue = "")
        val length = Regex("(?im)^content-length:\\s*(\\d+)").find(head)?.groupValues?.get(1)?.toInt()
        if (length != null && bytes.size >= head.length + 4 + length) return bytes.copyOf(head.length + 4 + length).decodeToString()
        val n = input.read(buffer)
        if (n < 0) return bytes.decodeToString()
        read.write(buffer, 0, n)
    }
}

/** The first `pid N` in [body] (every sample's `GET /` names the worker's pid that way), or null. */
fun pidIn(body: String): Long? = Regex("pid (\\d+)").find(body)?.groupValues?.get(1)?.toLong()
