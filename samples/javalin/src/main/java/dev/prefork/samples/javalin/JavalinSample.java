package dev.prefork.samples.javalin;

import dev.prefork.ForkOptions;
import dev.prefork.Prefork;
import dev.prefork.WorkerEvent;
import dev.prefork.jetty.PreforkJetty;
import io.javalin.Javalin;
import io.javalin.config.JavalinConfig;
import io.javalin.http.Context;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.NetworkConnectionLimit;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.QoSHandler;

/**
 * Javalin 7 as N prefork workers on one shared socket:
 *
 * <pre>
 * java -jar samples/javalin/target/prefork-javalin-sample.jar --port=8084 --workers=2
 * </pre>
 *
 * <p>The supervisor binds the socket; each worker gives Javalin a Jetty connector opened on that
 * very socket ({@link PreforkJetty#open}), so every worker accepts from one kernel queue. What a
 * worker does on SIGTERM (a rolling restart on SIGHUP, or a stop): prefork closes its handle on
 * the socket, the connector stops accepting, answers from then on say {@code Connection: close}
 * and the requests in flight finish; then the shutdown hook stops Javalin gracefully. The worker
 * is ready once Jetty has started. {@code --no-fork} runs one plain Javalin instead, for comparison.
 */
public final class JavalinSample {
    private static final int MAX_ROUNDS = 20_000_000;

    private JavalinSample() {}

    public static void main(String[] args) throws Exception {
        Options options = Options.parse(args);
        if (options.noFork) {
            Javalin app = Javalin.create(cfg -> {
                cfg.jetty.host = "127.0.0.1";
                cfg.jetty.port = options.port;
                configure(cfg, "Javalin (no fork)", options.threads);
            }).start();
            Runtime.getRuntime().addShutdownHook(new Thread(app::stop, "javalin-stop"));
            System.out.println("[javalin] pid " + ProcessHandle.current().pid() + " serving http://127.0.0.1:" + app.port());
            return;
        }
        // Bound here in the supervisor; in a worker, the same call returns the supervisor's socket.
        ServerSocketChannel socket = Prefork.bindSockets(options.port, "127.0.0.1", 1024).get(0);
        int port = ((InetSocketAddress) socket.getLocalAddress()).getPort();
        if (!Prefork.isWorker()) { // the supervisor (spares and workers are workers)
            printHowToTry(port, options.workers);
        }
        int id = Prefork.forkProcesses(ForkOptions.builder()
                .numProcesses(options.workers)
                .maxRestarts(20)
                .explicitReady(true) // ready once Jetty has started, below
                .spareWorkers(options.spares)
                .startupArchive(!options.noArchive)
                .listener(event -> {
                    if (event instanceof WorkerEvent.Started) {
                        System.out.println("[supervisor] javalin worker " + event.id() + " started, pid " + event.pid());
                    } else if (event instanceof WorkerEvent.SpareStarted || event instanceof WorkerEvent.SpareReady) {
                        System.out.println("[supervisor] " + event);
                    }
                })
                .build());
        Javalin app = Javalin.create(cfg -> {
            // Javalin adds the connector it is given; PreforkJetty opens it on the shared socket,
            // readies the worker once Jetty started, and drains it on SIGTERM.
            cfg.jetty.addConnector((server, httpConfig) -> {
                ServerConnector connector = PreforkJetty.open(new ServerConnector(server, new HttpConnectionFactory(httpConfig)), socket);
                if (options.threads > 0) {
                    // T connections at once: a busy worker leaves new ones in the shared queue for a free one.
                    server.addBean(new NetworkConnectionLimit(options.threads, connector));
                }
                return connector;
            });
            configure(cfg, "Javalin worker " + id, options.threads);
        }).start();
        // The graceful stop on SIGTERM, once the worker stopped accepting: Javalin registers no hook of its own.
        Runtime.getRuntime().addShutdownHook(new Thread(app::stop, "javalin-stop"));
        System.out.println("[javalin worker " + id + "] pid " + ProcessHandle.current().pid() + " serving http://127.0.0.1:" + app.port());
    }

    /** {@code GET /}: who answered; {@code GET /cpu?n=N}: N chained SHA-256 rounds, one core busy. */
    private static void configure(JavalinConfig cfg, String who, int threads) {
        long pid = ProcessHandle.current().pid();
        cfg.startup.showJavalinBanner = false;
        if (threads > 0) {
            // At most T requests handled at once (the others wait their turn).
            cfg.jetty.modifyServer(server -> {
                QoSHandler qos = new QoSHandler();
                qos.setMaxRequestCount(threads);
                server.insertHandler(qos);
            });
        }
        cfg.routes.get("/", ctx -> ctx.result("hello from " + who + " (pid " + pid + ")\n"));
        cfg.routes.get("/cpu", ctx -> cpu(ctx, who, pid));
    }

    private static void cpu(Context ctx, String who, long pid) throws NoSuchAlgorithmException {
        String n = ctx.queryParam("n");
        int rounds = n == null ? 200_000 : n.matches("\\d{1,8}") ? Integer.parseInt(n) : -1;
        if (rounds < 0 || rounds > MAX_ROUNDS) {
            ctx.status(400).result("n must be a number in 0.." + MAX_ROUNDS + "\n");
            return;
        }
        long started = System.nanoTime();
        byte[] digest = sha256Rounds(rounds);
        long millis = (System.nanoTime() - started) / 1_000_000;
        ctx.result(String.format("%s (pid %d): %d SHA-256 rounds in %d ms, %02x%02x%02x%02x...%n",
                who, pid, rounds, millis, digest[0], digest[1], digest[2], digest[3]));
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
        System.out.println("prefork + Javalin: " + workers + " workers on " + url + ", supervisor pid " + pid);
        System.out.println("  curl " + url + "/                    # which worker answers");
        System.out.println("  curl '" + url + "/cpu?n=200000'      # CPU work: run several at once");
        System.out.println("  kill -HUP " + pid + "               # rolling restart, no request lost");
        System.out.println("  Ctrl-C, or kill " + pid + "         # graceful stop");
    }

    /**
     * {@code --port=P --workers=N [--threads=T] [--spares=K] [--no-archive] [--no-fork]}; threads
     * 0: Javalin's default; spares: {@code ForkOptions.spareWorkers}; no-archive: no start-up archive.
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
                System.err.println("usage: java -jar prefork-javalin-sample.jar [--port=P] [--workers=N] [--threads=T] [--spares=K] [--no-archive] [--no-fork]");
                System.exit(2);
            }
            return new Options(port, workers, threads, spares, noArchive, noFork);
        }
    }
}
