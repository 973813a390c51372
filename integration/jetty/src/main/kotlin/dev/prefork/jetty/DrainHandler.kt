package dev.prefork.jetty

import org.eclipse.jetty.http.HttpHeader
import org.eclipse.jetty.http.HttpHeaderValue
import org.eclipse.jetty.server.Handler
import org.eclipse.jetty.server.Request
import org.eclipse.jetty.server.Response
import org.eclipse.jetty.util.Callback
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger

/**
 * Ends keep-alive before Jetty's graceful stop does. From [drain] on, every answer says
 * `Connection: close`, and [drain] returns once the requests begun before it were answered.
 * Left to itself, Jetty's stop ends a connection right after an answer that had promised
 * keep-alive (its headers went out before the stop began), while the client may already be
 * sending its next request on it: a request lost, which this avoids.
 */
public class DrainHandler(handler: Handler) : Handler.Wrapper(handler) {
    private val inFlight = AtomicInteger()

    @Volatile private var draining = false

    /**
     * Counts the request in flight until its [callback] completes, adds `Connection: close`
     * once [drain] began, and passes the request on to the wrapped handler.
     */
    override fun handle(request: Request, response: Response, callback: Callback): Boolean {
        inFlight.incrementAndGet()
        if (draining) response.headers.put(HttpHeader.CONNECTION, HttpHeaderValue.CLOSE.asString())
        var handled = false
        try {
            handled = super.handle(request, response, Callback.from(callback, Runnable { inFlight.decrementAndGet() }))
            return handled
        } finally {
            if (!handled) inFlight.decrementAndGet()
        }
    }

    /** Answers `Connection: close` from now on; waits, at most [timeoutMillis], for the requests in flight. */
    public fun drain(timeoutMillis: Long) {
        draining = true
        val deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis)
        while (inFlight.get() > 0 && System.nanoTime() < deadline) Thread.sleep(POLL_MILLIS)
    }

    /** Requests being handled now. */
    public fun inFlight(): Int = inFlight.get()
}

private const val POLL_MILLIS = 5L
