package dev.prefork.samples.vertx;

import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.HttpServer;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * {@code GET /}: who answered; {@code GET /cpu?n=N}: N chained SHA-256 rounds, one core busy, on
 * a worker thread (the event loop must not block).
 */
final class HelloVerticle extends VerticleBase {
    private static final int MAX_ROUNDS = 20_000_000;

    private final String who;
    private final int port;
    private final long pid = ProcessHandle.current().pid();
    private HttpServer server;

    HelloVerticle(String who, int port) {
        this.who = who;
        this.port = port;
    }

    @Override
    public Future<?> start() {
        Router router = Router.router(vertx);
        router.get("/").handler(ctx -> text(ctx, 200, "hello from " + who + " (pid " + pid + ")\n"));
        // Unordered: the requests of one event loop run on the worker threads side by side.
        router.get("/cpu").blockingHandler(this::cpu, false);
        return vertx.createHttpServer()
                .requestHandler(router)
                .listen(port, "127.0.0.1")
                .onSuccess(listening -> server = listening);
    }

    /** The port the server listens on, once started. */
    int port() {
        return server.actualPort();
    }

    private void cpu(RoutingContext ctx) {
        String n = ctx.queryParams().get("n");
        int rounds = n == null ? 200_000 : n.matches("\\d{1,8}") ? Integer.parseInt(n) : -1;
        if (rounds < 0 || rounds > MAX_ROUNDS) {
            text(ctx, 400, "n must be a number in 0.." + MAX_ROUNDS + "\n");
            return;
        }
        long started = System.nanoTime();
        byte[] digest = sha256Rounds(rounds);
        long millis = (System.nanoTime() - started) / 1_000_000;
        text(ctx, 200, String.format("%s (pid %d): %d SHA-256 rounds in %d ms, %02x%02x%02x%02x...%n",
                who, pid, rounds, millis, digest[0], digest[1], digest[2], digest[3]));
    }

    private static void text(RoutingContext ctx, int status, String body) {
        ctx.response().setStatusCode(status).putHeader("content-type", "text/plain; charset=utf-8").end(body);
    }

    private static byte[] sha256Rounds(int rounds) {
        try {
            MessageDigest sha256 = MessageDigest.getInstance("SHA-256");
            byte[] digest = new byte[32];
            for (int i = 0; i < rounds; i++) {
                digest = sha256.digest(digest);
            }
            return digest;
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }
}
