package dev.prefork.samples.helidon;

import dev.prefork.ForkOptions;
import dev.prefork.Prefork;
import dev.prefork.Worker;
import dev.prefork.WorkerEvent;
import dev.prefork.helidon.PreforkServerSockets;
import io.helidon.http.HeaderValues;
import io.helidon.http.Status;
import io.helidon.logging.common.LogConfig;
import io.helidon.webserver.WebServer;
import io.helidon.webserver.WebServerConfig;
import io.helidon.webserver.http.HttpRouting;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * Helidon 4 SE as N prefork workers on one shared socket:
 *
 * <pre>
 * java -jar samples/helidon/target/prefork-helidon-sample.jar --port=8084 --workers=2
 * </pre>
 *
 * <p>The supervisor binds the socket; each worker offers it to Helidon's listener through
 * prefork-helidon, whose {@code SelectorProvider} hands it to the listener's
 * {@code ServerSocketChannel.open()} (Helidon has no other way in), and the listener's
 * {@code bind} then binds nothing. The worker is ready once {@code start()} returned with the
 * server running. On SIGTERM (a rolling restart on SIGHUP, or a stop) prefork closes the
 * worker's handle on the socket and Helidon's listener stops accepting; answers from then on say
 * {@code Connection: close}, and once the worker's connections are closed prefork stops Helidon
 * (its own shutdown hook is off: it would close idle keep-alive connections at once, racing the
 * clients' next requests). {@code --no-fork} runs one plain Helidon instead, for comparison.
 */
public final class HelidonSample {
    private static final int DEFAULT_ROUNDS = 200_000;
    private static final int MAX_ROUNDS = 20_000_000;

    private HelidonSample() {}

    public static void main(String[] args) throws Exception {
        Options options = Options.parse(args);
        if (options.noFork) {
            LogConfig.configureRuntime();
            WebServer server = server(options, "Helidon (no fork)").port(options.port).build().start();
            System.out.println("[helidon] pid " + ProcessHandle.current().pid() + " serving http://127.0.0.1:" + server.port());
            return;
        }
        // First: the JVM picks its SelectorProvider once, at the first channel anything opens.
        PreforkServerSockets.install();
        LogConfig.configureRuntime();
        // Bound here in the supervisor; in a worker, the same call returns the supervisor's socket.
        ServerSocketChannel socket = Prefork.bindSockets(options.port, "127.0.0.1", 1024).get(0);
        int port = ((InetSocketAddress) socket.getLocalAddress()).getPort();
        if (!Prefork.isWorker()) { // the supervisor (spares and workers are workers)
            printHowToTry(port, options.workers);
        }
        int id = Prefork.forkProcesses(ForkOptions.builder()
                .numProcesses(options.workers)
                .maxRestarts(20)
                .explicitReady(true) // ready once Helidon has started, below
                .spareWorkers(options.spares)
                .startupArchive(!options.noArchive)
                .listener(event -> {
                    if (event instanceof WorkerEvent.Started) {
                        System.out.println("[supervisor] helidon worker " + event.id() + " started, pid " + event.pid());
                    } else if (event instanceof WorkerEvent.SpareStarted || event instanceof WorkerEvent.SpareReady) {
                        System.out.println("[supervisor] " + event);
                    }
                })
                .build());
        WebServer server = server(options, "Helidon worker " + id)
                .port(port)
                .shutdownHook(false) // stopped once drained, below
                .shutdownGracePeriod(Worker.drainTimeout())
                .build();
        Worker.onDrained(server::stop);
        // Helidon's listener opens its server channel in start(): that channel is the shared socket.
        PreforkServerSockets.offer(socket);
        server.start();
        if (!server.isRunning()) { // Helidon logs why and returns rather than throwing
            System.err.println("[helidon worker " + id + "] Helidon did not start on the shared socket http://127.0.0.1:" + port);
            System.exit(1);
        }
        Worker.ready();
        System.out.println("[helidon worker " + id + "] pid " + ProcessHandle.current().pid() + " serving http://127.0.0.1:" + server.port());
    }

    /** The server's configuration but its port: on 127.0.0.1, T connections at once with --threads=T. */
    private static WebServerConfig.Builder server(Options options, String who) {
        WebServerConfig.Builder builder = WebServer.builder()
                .host("127.0.0.1")
                .routing(routing -> routes(routing, who));
        if (options.threads > 0) {
            // T connections at once: a busy worker leaves new ones in the shared queue for a free one.
            builder.maxTcpConnections(options.threads);
        }
        return builder;
    }

    /** {@code GET /}: who answered; {@code GET /cpu?n=N}: N chained SHA-256 rounds, one core busy. */
    private static void routes(HttpRouting.Builder routing, String who) {
        long pid = ProcessHandle.current().pid();
        routing.addFilter((chain, request, response) -> {
                    // From the worker's SIGTERM on, each answer ends its keep-alive connection.
                    response.beforeSend(() -> {
                        if (Worker.isStopping()) {
                            response.header(HeaderValues.CONNECTION_CLOSE);
                        }
                    });
                    chain.proceed();
                })
                .get("/", (request, response) -> response.send("hello from " + who + " (pid " + pid + ")\n"))
                .get("/cpu", (request, response) -> {
                    String n = request.query().first("n").orElse(Integer.toString(DEFAULT_ROUNDS));
                    int rounds = n.matches("\\d{1,8}") ? Integer.parseInt(n) : -1;
                    if (rounds < 0 || rounds > MAX_ROUNDS) {
                        response.status(Status.BAD_REQUEST_400).send("n must be a number in 0.." + MAX_ROUNDS + "\n");
                        return;
                    }
                    long started = System.nanoTime();
                    byte[] digest = sha256Rounds(rounds);
                    long millis = (System.nanoTime() - started) / 1_000_000;
                    response.send(String.format("%s (pid %d): %d SHA-256 rounds in %d ms, %02x%02x%02x%02x...%n",
                            who, pid, rounds, millis, digest[0], digest[1], digest[2], digest[3]));
                });
    }

    private static byte[] sha256Rounds(int rounds) throws NoSuchAlgorithmException {
        MessageDigest sha256 = MessageDigest.getInstance("SHA-256");
        byte[] digest = new byte[32];
        for (int i = 0; i < rounds; i++) {
            digest = sha256.digest(digest);
        }
        return digest;
    }

    private static void printHowToTry(int port, int workers) {
        long pid = ProcessHandle.current().pid();
        String url = "http://127.0.0.1:" + port;
        System.out.println("prefork + Helidon SE: " + workers + " workers on " + url + ", supervisor pid " + pid);
        System.out.println("  curl " + url + "/                    # which worker answers");
        System.out.println("  curl '" + url + "/cpu?n=200000'      # CPU work: run several at once");
        System.out.println("  kill -HUP " + pid + "               # rolling restart, no request lost");
        System.out.println("  Ctrl-C, or kill " + pid + "         # graceful stop");
    }

    /**
     * {@code --port=P --workers=N [--threads=T] [--spares=K] [--no-archive] [--no-fork]}; threads
     * 0: the server's default; spares: {@code ForkOptions.spareWorkers}; no-archive: no start-up archive.
     */
    private record Options(int port, int workers, int threads, int spares, boolean noArchive, boolean noFork) {
        static Options parse(String[] args) {
            int port = 8084;
            int workers = Prefork.cpuCount();
            int threads = 0;
            int spares = 0;
            boolean noArchive = false;
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
                    } else if (arg.equals("--no-fork")) {
                        noFork = true;
                    } else {
                        throw new IllegalArgumentException("unknown argument: " + arg);
                    }
                }
            } catch (IllegalArgumentException e) { // NumberFormatException too
                System.err.println(e.getMessage());
                System.err.println("usage: java -jar prefork-helidon-sample.jar [--port=P] [--workers=N] [--threads=T] [--spares=K] [--no-archive] [--no-fork]");
                System.exit(2);
            }
            return new Options(port, workers, threads, spares, noArchive, noFork);
        }
    }
}
