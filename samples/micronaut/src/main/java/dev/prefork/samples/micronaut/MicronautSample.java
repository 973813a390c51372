package dev.prefork.samples.micronaut;

import dev.prefork.ForkOptions;
import dev.prefork.Prefork;
import dev.prefork.WorkerEvent;
import io.micronaut.runtime.Micronaut;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.util.Map;

/**
 * A Micronaut 4 application as N prefork workers on one shared socket:
 *
 * <pre>
 * java -jar samples/micronaut/target/prefork-micronaut-sample.jar --port=8084 --workers=2
 * </pre>
 *
 * <p>{@code main} binds the socket and forks before Micronaut starts: the supervisor never loads
 * Micronaut, and each worker starts it with the socket on its fd 0
 * ({@code inheritedChannel(true)}), where prefork-micronaut points Micronaut's HTTP server: a
 * listener on fd 0 that binds nothing. A worker is ready once the server has started
 * ({@code ServerStartupEvent}), so a rolling restart (SIGHUP) stops an old worker only when its
 * replacement serves. On SIGTERM a worker stops accepting, its connections finish (each answer
 * says {@code Connection: close}), and then Micronaut stops. {@code --no-fork} runs one plain
 * Micronaut server instead, for comparison.
 */
public final class MicronautSample {
    private MicronautSample() {}

    public static void main(String[] args) throws IOException, InterruptedException {
        Options options = Options.parse(args);
        if (!options.noFork) {
            // Bound here in the supervisor; in a worker, the same call returns the supervisor's socket.
            ServerSocketChannel socket = Prefork.bindSockets(options.port, "127.0.0.1", 1024).get(0);
            int port = ((InetSocketAddress) socket.getLocalAddress()).getPort();
            if (!Prefork.isWorker()) { // the supervisor (spares and workers are workers)
                printHowToTry(port, options.workers);
            }
            Prefork.forkProcesses(ForkOptions.builder()
                    .numProcesses(options.workers)
                    .maxRestarts(20)
                    .inheritedChannel(true) // Micronaut's listener serves fd 0: the shared socket
                    .explicitReady(true) // ready when the HTTP server has started, not when the JVM has
                    .spareWorkers(options.spares)
                    .startupArchive(!options.noArchive)
                    .listener(event -> {
                        if (event instanceof WorkerEvent.Started) {
                            System.out.println("[supervisor] micronaut worker " + event.id() + " started, pid " + event.pid());
                        } else if (event instanceof WorkerEvent.Ready) {
                            System.out.println("[supervisor] micronaut worker " + event.id() + " ready, pid " + event.pid());
                        } else if (event instanceof WorkerEvent.SpareStarted || event instanceof WorkerEvent.SpareReady) {
                            System.out.println("[supervisor] " + event);
                        }
                    })
                    .build());
        }
        // In a worker the port is not bound: prefork-micronaut's listener on the shared socket replaces it.
        Micronaut.build(new String[0]) // the arguments are the sample's, not Micronaut properties
                .mainClass(MicronautSample.class)
                .banner(false)
                .properties(Map.of("micronaut.server.host", "127.0.0.1", "micronaut.server.port", options.port))
                .start();
    }

    private static void printHowToTry(int port, int workers) {
        long pid = ProcessHandle.current().pid();
        String url = "http://127.0.0.1:" + port;
        System.out.println("prefork + Micronaut: " + workers + " workers on " + url + ", supervisor pid " + pid);
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
                System.err.println("usage: java -jar prefork-micronaut-sample.jar [--port=P] [--workers=N] [--spares=K] [--no-archive] [--no-fork]");
                System.exit(2);
            }
            return new Options(port, workers, spares, noArchive, noFork);
        }
    }
}
