package dev.prefork.samples.quarkus;

import dev.prefork.Prefork;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.OptionalInt;

/** {@code GET /}: who answered; {@code GET /cpu?n=N}: N chained SHA-256 rounds, one core busy. */
@Path("/")
@Produces(MediaType.TEXT_PLAIN)
public class Hello {
    private static final int MAX_ROUNDS = 20_000_000;
    private static final long PID = ProcessHandle.current().pid();
    private static final String WHO = who(Prefork.taskId());

    @GET
    public String hello() {
        return "hello from " + WHO + " (pid " + PID + ")\n";
    }

    @GET
    @Path("cpu")
    public Response cpu(@QueryParam("n") String n) throws NoSuchAlgorithmException {
        int rounds = n == null ? 200_000 : n.matches("\\d{1,8}") ? Integer.parseInt(n) : -1;
        if (rounds < 0 || rounds > MAX_ROUNDS) {
            return Response.status(Response.Status.BAD_REQUEST).entity("n must be a number in 0.." + MAX_ROUNDS + "\n").build();
        }
        long started = System.nanoTime();
        byte[] digest = sha256Rounds(rounds);
        long millis = (System.nanoTime() - started) / 1_000_000;
        return Response.ok(String.format("%s (pid %d): %d SHA-256 rounds in %d ms, %02x%02x%02x%02x...%n",
                WHO, PID, rounds, millis, digest[0], digest[1], digest[2], digest[3])).build();
    }

    private static String who(OptionalInt id) {
        return id.isPresent() ? "Quarkus worker " + id.getAsInt() : "Quarkus (no fork)";
    }

    private static byte[] sha256Rounds(int rounds) throws NoSuchAlgorithmException {
        MessageDigest sha256 = MessageDigest.getInstance("SHA-256");
        byte[] digest = new byte[32];
        for (int i = 0; i < rounds; i++) {
            digest = sha256.digest(digest);
        }
        return digest;
    }
}
