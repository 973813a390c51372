package dev.prefork.samples.jetty;

import dev.prefork.ForkOptions;
import dev.prefork.Prefork;
import dev.prefork.jetty.PreforkJetty;
import dev.prefork.WorkerEvent;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpStatus;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.NetworkConnectionLimit;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.QoSHandler;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.Fields;

/**
 * Jetty 12 as N prefork workers on one shared socket:
 *
 * <pre>
 * java -jar samples/jetty/target/prefork-jetty-sample.jar --port=8083 --workers=2
 * </pre>
 *
 * <p>The supervisor binds the socket; each worker's {@link ServerConnector}, made by
 * {@link PreforkJetty#connector}, serves that very socket, so every worker accepts from one
 * kernel queue. What a worker does on SIGTERM (a rolling restart on SIGHUP, or a stop): prefork
 * closes its handle on the socket, the connector stops accepting, answers from then on say
 * {@code Connection: close} and the requests in flight finish; then Jetty's shutdown hook stops
 * the server gracefully. The worker is ready once the server has started. {@code --no-fork} runs
 * one plain Jetty instead, for comparison.
 */
public final class JettySample {
    private static final int MAX_ROUNDS = 20_000_000;

    private JettySample() {}

    public static void main(String[] args) throws Exception {
        Options options = Options.parse(args);
        if (options.noFork) {
            Server server = new Server();
            ServerConnector connector = new ServerConnector(server);
            connector.setHost("127.0.0.1");
            connector.setPort(options.port);
            server.addConnector(connector);
            server.setHandler(limited(new Hello("Jetty (no fork)"), options.threads));
            server.start();
            System.out.println("[jetty] pid " + ProcessHandle.current().pid() + " serving http://127.0.0.1:" + connector.getLocalPort());
            server.join();
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
                .cpuShare(!options.noCpuShare)
                .pinWorkers(!options.noPin)
                .listener(event -> {
                    if (event instanceof WorkerEvent.Started) {
                        System.out.println("[supervisor] jetty worker " + event.id() + " started, pid " + event.pid());
                    } else if (event instanceof WorkerEvent.SpareStarted || event instanceof WorkerEvent.SpareReady) {
                        System.out.println("[supervisor] " + event);
                    }
                })
                .build());
        Server server = new Server();
        server.setHandler(limited(new Hello("Jetty worker " + id), options.threads));
        // Serves the shared socket; ready once started; on SIGTERM stops accepting, drains, stops gracefully.
        ServerConnector connector = PreforkJetty.connector(server, socket);
        if (options.threads > 0) {
            // T connections at once: a busy worker leaves new ones in the shared queue for a free one.
            server.addBean(new NetworkConnectionLimit(options.threads, connector));
        }
        server.start();
        System.out.println("[jetty worker " + id + "] pid " + ProcessHandle.current().pid()
                + " serving http://127.0.0.1:" + connector.getLocalPort());
        server.join();
    }

    /** At most [threads] requests handled at once (the others wait their turn); 0: no limit. */
    private static Handler limited(Handler handler, int threads) {
        if (threads <= 0) {
            return handler;
        }
        QoSHandler qos = new QoSHandler(handler);
        qos.setMaxRequestCount(threads);
        return qos;
    }

    /** {@code GET /}: who answered; {@code GET /cpu?n=N}: N chained SHA-256 rounds, one core busy. */
    private static final class Hello extends Handler.Abstract {
        private final String who;
        private final long pid = ProcessHandle.current().pid();

        Hello(String who) {
            this.who = who;
        }

        @Override
        public boolean handle(Request request, Response response, Callback callback) throws NoSuchAlgorithmException {
            String path = Request.getPathInContext(request);
            switch (path) {
                case "/" -> respond(response, callback, HttpStatus.OK_200, "hello from " + who + " (pid " + pid + ")\n");
                case "/cpu" -> {
                    Fields query = Request.extractQueryParameters(request);
                    String n = query.getValue("n");
                    int rounds = n == null ? 200_000 : n.matches("\\d{1,8}") ? Integer.parseInt(n) : -1;
                    if (rounds < 0 || rounds > MAX_ROUNDS) {
                        respond(response, callback, HttpStatus.BAD_REQUEST_400, "n must be a number in 0.." + MAX_ROUNDS + "\n");
                    } else {
                        long started = System.nanoTime();
                        byte[] digest = sha256Rounds(rounds);
                        long millis = (System.nanoTime() - started) / 1_000_000;
                        respond(response, callback, HttpStatus.OK_200, String.format("%s (pid %d): %d SHA-256 rounds in %d ms, %02x%02x%02x%02x...%n",
                                who, pid, rounds, millis, digest[0], digest[1], digest[2], digest[3]));
                    }
                }
                default -> respond(response, callback, HttpStatus.NOT_FOUND_404, "not found: " + path + "\n");
            }
            return true;
        }

        private static void respond(Response response, Callback callback, int status, String body) {
            response.setStatus(status);
            response.getHeaders().put(HttpHeader.CONTENT_TYPE, "text/plain; charset=utf-8");
            response.write(true, ByteBuffer.wrap(body.getBytes(StandardCharsets.UTF_8)), callback);
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

    private static void printHowToTry(int port, int workers) {
        long pid = ProcessHandle.current().pid();
        String url = "http://127.0.0.1:" + port;
        System.out.println("prefork + Jetty: " + workers + " workers on " + url + ", supervisor pid " + pid);
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
            int port = 8083;
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
                System.err.println("usage: java -jar prefork-jetty-sample.jar [--port=P] [--workers=N] [--threads=T] [--spares=K] [--no-archive] [--no-cpu-share] [--no-pin] [--no-fork]");
                System.exit(2);
            }
            return new Options(port, workers, threads, spares, noArchive, noCpuShare, noPin, noFork);
        }
    }
}
