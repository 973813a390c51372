package dev.prefork.samples.spring;

import dev.prefork.ForkOptions;
import dev.prefork.Prefork;
import dev.prefork.WorkerEvent;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HashMap;
import java.util.Map;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

/**
 * A Spring Boot application as N prefork workers on one shared socket:
 *
 * <pre>
 * java -jar samples/spring-boot/target/prefork-spring-boot-sample.jar --port=8081 --workers=2
 * </pre>
 *
 * <p>{@code main} binds the socket and forks before Spring starts: the supervisor never loads
 * Spring, and each worker runs {@code SpringApplication.run} with the socket on its fd 0
 * ({@code inheritedChannel(true)}), where prefork-spring-boot points the web server: Tomcat
 * here (Spring Boot 4.0), Jetty in {@code samples/spring-boot-jetty} (4.1), Reactor Netty in
 * {@code samples/spring-boot-webflux}, Tomcat under Spring Boot 3.5 in
 * {@code samples/spring-boot-3.5}: the same source, built by each. A worker is
 * ready once the application is ({@code ApplicationReadyEvent}), so a rolling restart (SIGHUP)
 * stops an old worker only when its replacement's context is up. On SIGTERM a worker stops
 * accepting, finishes what it holds, and Spring shuts down gracefully
 * ({@code server.shutdown=graceful}). {@code --no-fork} runs one plain Spring Boot instead.
 */
@SpringBootApplication
@RestController
public class SpringBootSample {
    private static final int MAX_ROUNDS = 20_000_000;

    private final String who = Prefork.taskId().isPresent() ? "Spring Boot worker " + Prefork.taskId().getAsInt() : "Spring Boot (no fork)";
    private final long pid = ProcessHandle.current().pid();

    public static void main(String[] args) throws IOException, InterruptedException {
        Options options = Options.parse(args);
        int port = options.port;
        if (!options.noFork) {
            // Bound here in the supervisor; in a worker, the same call returns the supervisor's socket.
            ServerSocketChannel socket = Prefork.bindSockets(options.port, "127.0.0.1", 1024).get(0);
            port = ((InetSocketAddress) socket.getLocalAddress()).getPort();
            if (!Prefork.isWorker()) { // the supervisor (spares and workers are workers)
                printHowToTry(port, options.workers);
            }
            Prefork.forkProcesses(ForkOptions.builder()
                    .numProcesses(options.workers)
                    .maxRestarts(20)
                    .inheritedChannel(true) // the web server serves fd 0: the shared socket
                    .explicitReady(true) // ready when the application is, not when the JVM is
                    .spareWorkers(options.spares)
                    .startupArchive(!options.noArchive)
                    .cpuShare(!options.noCpuShare)
                    .pinWorkers(!options.noPin)
                    .listener(event -> {
                        if (event instanceof WorkerEvent.Started) {
                            System.out.println("[supervisor] spring worker " + event.id() + " started, pid " + event.pid());
                        } else if (event instanceof WorkerEvent.Ready) {
                            System.out.println("[supervisor] spring worker " + event.id() + " ready, pid " + event.pid());
                        } else if (event instanceof WorkerEvent.SpareStarted || event instanceof WorkerEvent.SpareReady) {
                            System.out.println("[supervisor] " + event);
                        }
                    })
                    .build());
        }
        SpringApplication application = new SpringApplication(SpringBootSample.class);
        Map<String, Object> defaults = new HashMap<>(Map.of("server.port", port, "server.address", "127.0.0.1"));
        if (options.threads > 0) {
            // T requests at once (Tomcat's default: 200), and no more connections than that: a
            // busy worker leaves new connections in the shared queue for a free one to accept.
            defaults.put("server.tomcat.threads.max", options.threads);
            defaults.put("server.tomcat.threads.min-spare", options.threads);
            defaults.put("server.tomcat.max-connections", options.threads);
        }
        application.setDefaultProperties(defaults);
        application.run();
    }

    @GetMapping("/")
    public String hello() {
        return "hello from " + who + " (pid " + pid + ")\n";
    }

    /** {@code GET /cpu?n=N}: N chained SHA-256 rounds on the request's thread, one core busy. */
    @GetMapping("/cpu")
    public ResponseEntity<String> cpu(@RequestParam(name = "n", defaultValue = "200000") int n) throws NoSuchAlgorithmException {
        if (n < 0 || n > MAX_ROUNDS) {
            return ResponseEntity.badRequest().body("n must be a number in 0.." + MAX_ROUNDS + "\n");
        }
        long started = System.nanoTime();
        MessageDigest sha256 = MessageDigest.getInstance("SHA-256");
        byte[] digest = new byte[32];
        for (int i = 0; i < n; i++) {
            digest = sha256.digest(digest);
        }
        long millis = (System.nanoTime() - started) / 1_000_000;
        return ResponseEntity.ok(String.format("%s (pid %d): %d SHA-256 rounds in %d ms, %02x%02x%02x%02x...%n",
                who, pid, n, millis, digest[0], digest[1], digest[2], digest[3]));
    }

    private static void printHowToTry(int port, int workers) {
        long pid = ProcessHandle.current().pid();
        String url = "http://127.0.0.1:" + port;
        System.out.println("prefork + Spring Boot: " + workers + " workers on " + url + ", supervisor pid " + pid);
        System.out.println("  curl " + url + "/                    # which worker answers");
        System.out.println("  curl '" + url + "/cpu?n=200000'      # CPU work: run several at once");
        System.out.println("  kill -HUP " + pid + "               # rolling restart, no request lost");
        System.out.println("  Ctrl-C, or kill " + pid + "         # graceful stop");
    }

    /**
     * {@code --port=P --workers=N [--threads=T] [--spares=K] [--no-archive] [--no-cpu-share] [--no-pin] [--no-fork]}; threads
     * 0: the server's default; spares: {@code ForkOptions.spareWorkers}; no-archive: no start-up archive;
     * no-cpu-share, no-pin: {@code ForkOptions.cpuShare(false)}, {@code pinWorkers(false)}.
     */
    private record Options(int port, int workers, int threads, int spares, boolean noArchive, boolean noCpuShare, boolean noPin, boolean noFork) {
        static Options parse(String[] args) {
            int port = 8081;
            int workers = Prefork.cpuCount();
            int threads = 0;
            int spares = 0;
            boolean noArchive = false;
            boolean noCpuShare = false;
            boolean noPin = false;
            boolean noFork = false;
            try {
                for (String arg : args) {
                    if (arg.startsWith("--port=")) {
                        port = Integer.parseInt(arg.substring("--port=".length()));
                    } else if (arg.startsWith("--workers=")) {
                        workers = Integer.parseInt(arg.substring("--workers=".length()));
                    } else if (arg.startsWith("--threads=")) {
                        threads = Integer.parseInt(arg.substring("--threads=".length()));
                    } else if (arg.startsWith("--spares=")) {
                        spares = Integer.parseInt(arg.substring("--spares=".length()));
                    } else if (arg.equals("--no-archive")) {
                        noArchive = true;
                    } else if (arg.equals("--no-cpu-share")) {
                        noCpuShare = true;
                    } else if (arg.equals("--no-pin")) {
                        noPin = true;
                    } else if (arg.equals("--no-fork")) {
                        noFork = true;
                    } else {
                        throw new IllegalArgumentException("unknown argument: " + arg);
                    }
                }
            } catch (IllegalArgumentException e) { // NumberFormatException too
                System.err.println(e.getMessage());
                System.err.println("usage: java -jar prefork-spring-boot-sample.jar [--port=P] [--workers=N] [--threads=T] [--spares=K] [--no-archive] [--no-cpu-share] [--no-pin] [--no-fork]");
                System.exit(2);
            }
            return new Options(port, workers, threads, spares, noArchive, noCpuShare, noPin, noFork);
        }
    }
}
