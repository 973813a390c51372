package dev.prefork.samples;

import dev.prefork.ForkOptions;
import dev.prefork.Prefork;
import dev.prefork.Worker;
import dev.prefork.WorkerEvent;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A multi-process HTTP server with nothing but the JDK and prefork, Tornado's
 * {@code bind_sockets} + {@code fork_processes} pattern:
 *
 * <pre>
 * java -jar prefork-samples.jar [port] [--workers N] [--spares K]     # port 8888, cpuCount() workers by default
 * </pre>
 *
 * The socket is bound once, before the fork, so every worker accepts from the same kernel
 * queue. {@code /} says which worker answered, {@code /cpu?n=...} burns CPU (n SHA-256
 * rounds) to show the workers scaling, {@code /crash} halts the worker with status 3 and the
 * supervisor restarts it. SIGHUP to the supervisor replaces the workers one at a time; SIGTERM
 * or Ctrl-C stops them all. Either way each worker drains: it stops accepting and finishes the
 * requests it already took, so a rolling restart loses no request.
 *
 * <p>With {@code --spares K} the supervisor keeps K spare workers waiting; one takes over the
 * moment a worker dies. A spare puts its wait to use ({@link #warmUp}): it serves a few thousand
 * requests on a private socket of its own, so that its first answers after it took over are as
 * fast as a warm worker's.
 */
public final class HttpServerSample {
    private static final int DEFAULT_PORT = 8888;
    private static final int HANDLER_THREADS = 4;
    private static final int MAX_RESTARTS = 20;
    private static final int MAX_CPU_ROUNDS = 20_000_000;
    /** Enough for the JIT to compile the request path (C2 after about 10,000 calls). */
    private static final int WARM_UP_REQUESTS = 15_000;

    private final int id;
    private final long pid = ProcessHandle.current().pid();
    private final ServerSocketChannel channel;

    private HttpServerSample(int id, ServerSocketChannel channel) {
        this.id = id;
        this.channel = channel;
    }

    public static void main(String[] args) throws Exception {
        System.setProperty("org.slf4j.simpleLogger.showThreadName", "false");
        int port = DEFAULT_PORT;
        int workers = Prefork.cpuCount();
        int spares = 0;
        try {
            for (int i = 0; i < args.length; i++) {
                if (args[i].equals("--workers") && i + 1 < args.length) {
                    workers = Integer.parseInt(args[++i]);
                } else if (args[i].equals("--spares") && i + 1 < args.length) {
                    spares = Integer.parseInt(args[++i]);
                } else {
                    port = Integer.parseInt(args[i]);
                }
            }
        } catch (NumberFormatException e) {
            System.err.println("usage: HttpServerSample [port] [--workers N] [--spares K]");
            System.exit(2);
        }
        // Bound here in the supervisor; in a worker, this same call returns the supervisor's socket.
        List<ServerSocketChannel> socks = Prefork.bindSockets(port, "127.0.0.1");
        if (!Prefork.isWorker()) {
            printHowToTry(((java.net.InetSocketAddress) socks.get(0).getLocalAddress()).getPort(), workers);
        }
        if (Worker.isSpare()) {
            warmUp(); // a spare, waiting for an id: never the shared socket, only a private one
        }
        AtomicInteger restarts = new AtomicInteger();
        ForkOptions options = ForkOptions.builder()
                .numProcesses(workers)
                .maxRestarts(MAX_RESTARTS)
                .spareWorkers(spares)
                // prefork logs every exit itself; the listener adds the starts and the restart budget.
                .listener(event -> {
                    if (event instanceof WorkerEvent.Exited exited && exited.restarting()) {
                        restarts.incrementAndGet();
                    } else if (event instanceof WorkerEvent.Started started) {
                        System.out.println("[supervisor] worker " + event.id() + " started, pid " + event.pid()
                                + (started.fromSpare() ? " (a spare took over)" : "")
                                + (restarts.get() == 0 ? "" : " (restarts used: " + restarts + " of " + MAX_RESTARTS + ")"));
                    } else if (event instanceof WorkerEvent.SpareReady) {
                        System.out.println("[supervisor] " + event);
                    }
                })
                .build();
        // The supervisor stays in here until it stops; each worker gets its task id back at once.
        int id = Prefork.forkProcesses(options);
        new HttpServerSample(id, socks.get(0)).serve();
    }

    /**
     * What a spare does while it waits: the whole request path, served on a socket of its own
     * (port 0, loopback) until the JIT compiled it, then a GC so the warm-up's garbage is not
     * carried into service. The shared socket is never touched before {@code forkProcesses}
     * returns.
     */
    private static void warmUp() throws IOException, InterruptedException {
        try (ServerSocketChannel own = ServerSocketChannel.open()) {
            own.bind(new java.net.InetSocketAddress("127.0.0.1", 0));
            HttpServerSample server = new HttpServerSample(-1, own);
            Thread acceptor = new Thread(() -> {
                try {
                    while (true) {
                        server.handle(own.accept());
                    }
                } catch (IOException closed) {
                    // the warm-up is over
                }
            }, "warm-up");
            acceptor.start();
            byte[] request = "GET / HTTP/1.0\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1);
            for (int i = 0; i < WARM_UP_REQUESTS; i++) {
                try (Socket client = new Socket("127.0.0.1", own.socket().getLocalPort())) {
                    client.getOutputStream().write(request);
                    client.getInputStream().readAllBytes();
                }
            }
            own.close();
            acceptor.join();
        }
        System.gc();
    }

    private static void printHowToTry(int port, int workers) {
        long pid = ProcessHandle.current().pid();
        String url = "http://127.0.0.1:" + port;
        System.out.println("prefork HTTP server: " + workers + " workers on " + url + ", supervisor pid " + pid);
        String[][] tries = {
            {"curl " + url + "/", "which worker answers"},
            {"curl '" + url + "/cpu?n=200000'", "CPU work: run several at once"},
            {"curl " + url + "/crash", "a worker dies, the supervisor restarts it"},
            {"kill -HUP " + pid, "rolling restart, one worker at a time"},
            {"Ctrl-C, or kill " + pid, "graceful stop of everything"},
        };
        for (String[] line : tries) {
            System.out.printf("  %-42s # %s%n", line[0], line[1]);
        }
    }

    /** Accepts on this thread, handles on a small pool; returns once a drain closed the channel. */
    private void serve() throws IOException, InterruptedException {
        ExecutorService handlers = Executors.newFixedThreadPool(HANDLER_THREADS);
        Thread acceptor = Thread.currentThread();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> drain(acceptor, handlers), "drain"));
        System.out.println("[worker " + id + "] pid " + pid + " serving " + channel.getLocalAddress());
        while (true) {
            SocketChannel connection;
            try {
                connection = channel.accept();
            } catch (ClosedChannelException closed) {
                return; // drain() closed our handle; the other workers keep accepting
            }
            handlers.execute(() -> handle(connection));
        }
    }

    /**
     * Runs on SIGTERM (a rolling restart, or the supervisor stopping) and SIGINT. Closing this
     * process's handle on the shared socket stops accepting here and nowhere else. Once the
     * acceptor has handed its last connection to the pool, the pool finishes what it holds.
     */
    private void drain(Thread acceptor, ExecutorService handlers) {
        try {
            channel.close();
            acceptor.join(5_000);
            handlers.shutdown();
            if (!handlers.awaitTermination(20, TimeUnit.SECONDS)) {
                System.out.println("[worker " + id + "] requests still running after 20 s, leaving anyway");
            }
            System.out.println("[worker " + id + "] pid " + pid + " drained, exiting");
        } catch (IOException | InterruptedException e) {
            System.out.println("[worker " + id + "] drain failed: " + e);
        }
    }

    /** One request per connection: read the request line and headers, answer, close. */
    private void handle(SocketChannel connection) {
        try (Socket socket = connection.socket()) {
            socket.setSoTimeout(10_000); // a silent client must not hold up a drain
            BufferedReader in = new BufferedReader(
                    new InputStreamReader(socket.getInputStream(), StandardCharsets.ISO_8859_1));
            String requestLine = in.readLine();
            for (String header = in.readLine(); header != null && !header.isEmpty(); header = in.readLine()) {
                // no request bodies here: the headers are read only to get past them
            }
            String[] parts = requestLine == null ? new String[0] : requestLine.split(" ");
            if (parts.length != 3) {
                respond(socket, 400, "bad request\n");
                return;
            }
            String target = parts[1];
            int q = target.indexOf('?');
            String path = q < 0 ? target : target.substring(0, q);
            String query = q < 0 ? "" : target.substring(q + 1);
            switch (path) {
                case "/" -> respond(socket, 200, "hello from worker " + id + " (pid " + pid + ")\n");
                case "/cpu" -> cpu(socket, query);
                case "/crash" -> {
                    // Stop accepting first, so the crash takes down this request and not the
                    // connections the acceptor would otherwise grab meanwhile.
                    channel.close();
                    respond(socket, 200, "worker " + id + " (pid " + pid + ") crashing with status 3\n");
                    Runtime.getRuntime().halt(3); // no shutdown hooks, no drain: a real crash
                }
                default -> respond(socket, 404, "not found: " + path + "\n");
            }
        } catch (IOException | NoSuchAlgorithmException e) {
            System.out.println("[worker " + id + "] " + e);
        }
    }

    /** {@code /cpu?n=N}: N chained SHA-256 rounds on one thread, so one request keeps one core busy. */
    private void cpu(Socket socket, String query) throws IOException, NoSuchAlgorithmException {
        int rounds = 200_000;
        for (String param : query.split("&")) {
            if (param.startsWith("n=")) {
                rounds = param.substring(2).matches("\\d{1,8}") ? Integer.parseInt(param.substring(2)) : -1;
            }
        }
        if (rounds < 0 || rounds > MAX_CPU_ROUNDS) {
            respond(socket, 400, "n must be a number in 0.." + MAX_CPU_ROUNDS + "\n");
            return;
        }
        long start = System.nanoTime();
        MessageDigest sha256 = MessageDigest.getInstance("SHA-256");
        byte[] digest = new byte[32];
        for (int i = 0; i < rounds; i++) {
            digest = sha256.digest(digest);
        }
        long millis = (System.nanoTime() - start) / 1_000_000;
        respond(socket, 200, String.format("worker %d (pid %d): %d SHA-256 rounds in %d ms, %02x%02x%02x%02x...%n",
                id, pid, rounds, millis, digest[0], digest[1], digest[2], digest[3]));
    }

    private static void respond(Socket socket, int status, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        String reason = status == 200 ? "OK" : status == 400 ? "Bad Request" : "Not Found";
        String head = "HTTP/1.1 " + status + " " + reason + "\r\n"
                + "Content-Type: text/plain; charset=utf-8\r\n"
                + "Content-Length: " + bytes.length + "\r\n"
                + "Connection: close\r\n\r\n";
        OutputStream out = socket.getOutputStream();
        out.write(head.getBytes(StandardCharsets.ISO_8859_1));
        out.write(bytes);
        out.flush();
    }
}
