package dev.prefork.samples.micronaut;

import dev.prefork.Prefork;
import io.micronaut.http.HttpResponse;
import io.micronaut.http.MediaType;
import io.micronaut.http.annotation.Controller;
import io.micronaut.http.annotation.Get;
import io.micronaut.http.annotation.QueryValue;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/** {@code GET /}: who answered; {@code GET /cpu?n=N}: N chained SHA-256 rounds, one core busy. */
@Controller(produces = MediaType.TEXT_PLAIN)
public class Hello {
    private static final int MAX_ROUNDS = 20_000_000;

    private final String who = Prefork.taskId().isPresent() ? "Micronaut worker " + Prefork.taskId().getAsInt() : "Micronaut (no fork)";
    private final long pid = ProcessHandle.current().pid();

    @Get
    public String hello() {
        return "hello from " + who + " (pid " + pid + ")\n";
    }

    @Get("/cpu")
    public HttpResponse<String> cpu(@QueryValue(defaultValue = "200000") int n) throws NoSuchAlgorithmException {
        if (n < 0 || n > MAX_ROUNDS) {
            return HttpResponse.badRequest("n must be a number in 0.." + MAX_ROUNDS + "\n");
        }
        long started = System.nanoTime();
        MessageDigest sha256 = MessageDigest.getInstance("SHA-256");
        byte[] digest = new byte[32];
        for (int i = 0; i < n; i++) {
            digest = sha256.digest(digest);
        }
        long millis = (System.nanoTime() - started) / 1_000_000;
        return HttpResponse.ok(String.format("%s (pid %d): %d SHA-256 rounds in %d ms, %02x%02x%02x%02x...%n",
                who, pid, n, millis, digest[0], digest[1], digest[2], digest[3]));
    }
}
