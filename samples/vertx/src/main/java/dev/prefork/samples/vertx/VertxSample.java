package dev.prefork.samples.vertx;

import dev.prefork.ForkOptions;
import dev.prefork.Prefork;
import dev.prefork.Worker;
import dev.prefork.WorkerEvent;
import dev.prefork.vertx.PreforkVertx;
import io.vertx.core.Vertx;
import io.vertx.core.VertxBuilder;
import io.vertx.core.VertxOptions;
import io.vertx.core.transport.Transport;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;

/**
 * Vert.x 5 as N prefork workers on one shared socket:
 *
 * <pre>
 * java -jar samples/vertx/target/prefork-vertx-sample.jar --port=8085 --workers=2
 * </pre>
 *
 * <p>The supervisor binds the socket; each worker's Vert.x runs on the transport
 * {@link PreforkVertx#transport} made over that very socket, so its HTTP server accepts from the
 * one kernel queue every worker shares. What a worker does on SIGTERM (a rolling restart on
 * SIGHUP, or a stop): prefork closes its server channel, answers from then on say
 * {@code Connection: close} and the requests in flight finish; once its connections are closed,
 * Vert.x is closed. The worker is ready once the server listens. {@code --no-fork} runs one plain
 * Vert.x instead, for comparison.
 */
public final class VertxSample {
    private VertxSample() {}

    public static void main(String[] args) throws Exception {
        Options options = Options.parse(args);
        if (options.noFork) {
            Vertx vertx = builder(options.threads).build();
            Runtime.getRuntime().addShutdownHook(new Thread(() -> vertx.close().await(), "vertx-close"));
            deploy(vertx, new HelloVerticle("Vert.x (no fork)", options.port), "[vertx]");
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
                .explicitReady(true) // ready once the server listens, below
                .spareWorkers(options.spares)
                .startupArchive(!options.noArchive)
                .listener(event -> {
                    if (event instanceof WorkerEvent.Started) {
                        System.out.println("[supervisor] vert.x worker " + event.id() + " started, pid " + event.pid());
                    } else if (event instanceof WorkerEvent.SpareStarted || event instanceof WorkerEvent.SpareReady) {
                        System.out.println("[supervisor] " + event);
                    }
                })
                .build());
        // T connections at once: a busy worker leaves new ones in the shared queue for a free one.
        Transport transport = options.threads > 0
                ? PreforkVertx.transport(socket, Transport.NIO, options.threads)
                : PreforkVertx.transport(socket);
        Vertx vertx = builder(options.threads).withTransport(transport).build();
        // Not from a shutdown hook: Vert.x's close ends idle keep-alive connections at once, while
        // their clients may be sending on them; prefork's drain ends them first.
        Worker.onDrained(() -> vertx.close().await());
        deploy(vertx, new HelloVerticle("Vert.x worker " + id, port), "[vert.x worker " + id + "]");
    }

    /** Threads 0: Vert.x's defaults; T: T event loops and T worker threads (for {@code /cpu}). */
    private static VertxBuilder builder(int threads) {
        VertxOptions options = new VertxOptions();
        if (threads > 0) {
            options.setEventLoopPoolSize(threads).setWorkerPoolSize(threads);
        }
        return Vertx.builder().with(options);
    }

    /** Deploys [verticle], or closes Vert.x and throws what failed, so that the JVM exits with status 1. */
    private static void deploy(Vertx vertx, HelloVerticle verticle, String who) {
        try {
            vertx.deployVerticle(verticle).await();
        } catch (Exception e) {
            vertx.close();
            throw e;
        }
        System.out.println(who + " pid " + ProcessHandle.current().pid() + " serving http://127.0.0.1:" + verticle.port());
    }

    private static void printHowToTry(int port, int workers) {
        long pid = ProcessHandle.current().pid();
        String url = "http://127.0.0.1:" + port;
        System.out.println("prefork + Vert.x: " + workers + " workers on " + url + ", supervisor pid " + pid);
        System.out.println("  curl " + url + "/                    # which worker answers");
        System.out.println("  curl '" + url + "/cpu?n=200000'      # CPU work: run several at once");
        System.out.println("  kill -HUP " + pid + "               # rolling restart, no request lost");
        System.out.println("  Ctrl-C, or kill " + pid + "         # graceful stop");
    }

    /**
     * {@code --port=P --workers=N [--threads=T] [--spares=K] [--no-archive] [--no-fork]}; threads
     * 0: Vert.x's default; spares: {@code ForkOptions.spareWorkers}; no-archive: no start-up archive.
     */
    private record Options(int port, int workers, int threads, int spares, boolean noArchive, boolean noFork) {
        static Options parse(String[] args) {
            int port = 8085;
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
                System.err.println("usage: java -jar prefork-vertx-sample.jar [--port=P] [--workers=N] [--threads=T] [--spares=K] [--no-archive] [--no-fork]");
                System.exit(2);
            }
            return new Options(port, workers, threads, spares, noArchive, noFork);
        }
    }
}
