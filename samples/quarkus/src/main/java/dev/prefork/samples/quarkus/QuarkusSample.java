package dev.prefork.samples.quarkus;

import dev.prefork.ForkOptions;
import dev.prefork.Prefork;
import dev.prefork.WorkerEvent;
import dev.prefork.quarkus.PreforkQuarkus;
import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.annotations.QuarkusMain;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;

/**
 * Quarkus 3 as N prefork workers on one shared socket:
 *
 * <pre>
 * java -jar samples/quarkus/target/prefork-quarkus-sample.jar --port=8084 --workers=2
 * </pre>
 *
 * <p>The supervisor binds the socket and never starts Quarkus; each worker runs the application,
 * whose Vert.x HTTP server serves that very socket ({@link PreforkQuarkus#serve}), so every worker
 * accepts from one kernel queue. A worker is ready once Vert.x has bound its HTTP server. What a
 * worker does on SIGTERM (a rolling restart on SIGHUP, or a stop): prefork closes its handle on
 * the socket, answers from then on say {@code Connection: close} and the connections close after
 * them; then Quarkus shuts down. {@code --no-fork} runs one plain Quarkus instead, for comparison.
 */
@QuarkusMain
public class QuarkusSample {
    public static void main(String... args) throws Exception {
        Options options = Options.parse(args);
        if (options.noFork) {
            System.setProperty("quarkus.http.port", String.valueOf(options.port));
            Quarkus.run(args);
            return;
        }
        PreforkQuarkus.logToConsole(); // the supervisor never starts Quarkus, which holds the log back until it does
        // Bound here in the supervisor; in a worker, the same call returns the supervisor's socket.
        ServerSocketChannel socket = Prefork.bindSockets(options.port, "127.0.0.1", 1024).get(0);
        int port = ((InetSocketAddress) socket.getLocalAddress()).getPort();
        if (!Prefork.isWorker()) { // the supervisor (spares and workers are workers)
            printHowToTry(port, options.workers);
        }
        int id = Prefork.forkProcesses(ForkOptions.builder()
                .numProcesses(options.workers)
                .maxRestarts(20)
                .explicitReady(true) // ready once Vert.x has bound its HTTP server (prefork-netty says it)
                .spareWorkers(options.spares)
                .startupArchive(!options.noArchive)
                .listener(event -> {
                    if (event instanceof WorkerEvent.Started) {
                        System.out.println("[supervisor] quarkus worker " + event.id() + " started, pid " + event.pid());
                    } else if (event instanceof WorkerEvent.SpareStarted || event instanceof WorkerEvent.SpareReady) {
                        System.out.println("[supervisor] " + event);
                    }
                })
                .build());
        PreforkQuarkus.serve(socket);
        System.out.println("[quarkus worker " + id + "] pid " + ProcessHandle.current().pid() + " starting Quarkus on http://127.0.0.1:" + port);
        Quarkus.run(args);
    }

    private static void printHowToTry(int port, int workers) {
        long pid = ProcessHandle.current().pid();
        String url = "http://127.0.0.1:" + port;
        System.out.println("prefork + Quarkus: " + workers + " workers on " + url + ", supervisor pid " + pid);
        System.out.println("  curl " + url + "/                    # which worker answers");
        System.out.println("  curl '" + url + "/cpu?n=200000'      # CPU work: run several at once");
        System.out.println("  kill -HUP " + pid + "               # rolling restart, no request lost");
        System.out.println("  Ctrl-C, or kill " + pid + "         # graceful stop");
    }

    /**
     * {@code --port=P --workers=N [--spares=K] [--no-archive] [--no-fork]}; spares:
     * {@code ForkOptions.spareWorkers}; no-archive: no start-up archive.
     */
    private record Options(int port, int workers, int spares, boolean noArchive, boolean noFork) {
        static Options parse(String[] args) {
            int port = 8084;
            int workers = Prefork.cpuCount();
            int spares = 0;
            boolean noArchive = false;
            boolean noFork = false;
            try {
                for (String arg : args) {
                    if (arg.startsWith("--port=")) {
                        port = Integer.parseInt(arg.substring("--port=".length()));
                    } else if (arg.startsWith("--workers=")) {
                        workers = Integer.parseInt(arg.substring("--workers=".length()));
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
                System.err.println("usage: java -jar prefork-quarkus-sample.jar [--port=P] [--workers=N] [--spares=K] [--no-archive] [--no-fork]");
                System.exit(2);
            }
            return new Options(port, workers, spares, noArchive, noFork);
        }
    }
}
