package dev.prefork.testing

import java.io.IOException
import java.net.Socket

/**
 * GET [path] from [host]:[port] over HTTP/1.0 on a fresh connection; the body of a 200
 * answer, or [IOException] when the connection fails, closes early or the status is not 200.
 */
fun get(port: Int, path: String = "/", host: String = "127.0.0.1", timeoutMillis: Int = 10_000): String {
    Socket(host, port).use { socket ->
        socket.soTimeout = timeoutMillis
        socket.getOutputStream().write("GET $path HTTP/1.0\r\nHost: $host\r\n\r\n".toByteArray())
        val response = socket.getInputStream().readAllBytes().decodeToString()
        val split = response.indexOf("\r\n\r\n")
        if (!Regex("^HTTP/1\\.[01] 200").containsMatchIn(response) || split < 0) throw IOException("bad response: \"$response\"")
        return response.substring(split + 4)
    }
}

/** The first `pid N` in [body] (every sample's `GET /` names the worker's pid that way), or null. */
fun pidIn(body: String): Long? = Regex("pid (\\d+)").find(body)?.groupValues?.get(1)?.toLong()
