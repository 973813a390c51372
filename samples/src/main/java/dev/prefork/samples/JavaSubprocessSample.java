package dev.prefork.samples;

import dev.prefork.CalledProcessError;
import dev.prefork.ExitStatus;
import dev.prefork.Redirect;
import dev.prefork.Subprocess;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * prefork's blocking Java facade: no coroutines in sight. Each section starts a child in a
 * try-with-resources block, so even an exception on the way terminates and reaps it.
 *
 * <pre>
 * java -cp prefork-samples.jar dev.prefork.samples.JavaSubprocessSample
 * </pre>
 */
public final class JavaSubprocessSample {
    private JavaSubprocessSample() {
    }

    public static void main(String[] args) throws Exception {
        talkToCat();
        shellWithCallbacks();
        readLinesAsStream();
        failingCommand();
        terminateSleeper();
        System.out.println("done");
    }

    /** A conversation with {@code cat}: write a line, read it back, close stdin, collect the exit. */
    private static void talkToCat() throws IOException, InterruptedException {
        System.out.println("== cat: write to stdin, read from stdout");
        try (Subprocess cat = Subprocess.builder("cat")
                .stdin(Redirect.STREAM)
                .stdout(Redirect.STREAM)
                .start()) {
            System.out.println("started cat, pid " + cat.pid() + ", returnCode " + cat.returnCode());
            for (String line : new String[] {"hello", "prefork from Java"}) {
                cat.stdin().write(bytes(line + "\n"));
                byte[] echoed = cat.stdout().readUntil(bytes("\n"));
                System.out.print("cat echoed: " + text(echoed));
            }
            cat.stdin().close(); // cat reads end-of-file and exits
            byte[] rest = cat.stdout().readUntilClose();
            int rc = cat.waitForExit();
            System.out.println("cat left " + rest.length + " more bytes and exited: returnCode " + rc
                    + ", " + cat.exitStatus());
        }
    }

    /** {@code sh -c} with stderr merged into stdout, an exit callback and the onExit() future. */
    private static void shellWithCallbacks() throws Exception {
        System.out.println("== sh -c: stderr merged into stdout, setExitCallback and onExit()");
        CountDownLatch callbackRan = new CountDownLatch(1);
        try (Subprocess sh = Subprocess.builder("sh", "-c",
                        "read name; echo \"hello, $name\"; echo 'this line went to stderr' >&2; exit 0")
                .stdin(Redirect.STREAM)
                .stdout(Redirect.STREAM)
                .stderr(Redirect.STDOUT)
                .start()) {
            // Runs exactly once, on one of prefork's background threads, not on this one.
            sh.setExitCallback(rc -> {
                System.out.println("exit callback on thread '" + Thread.currentThread().getName() + "': returnCode " + rc);
                callbackRan.countDown();
            });
            CompletableFuture<Integer> exit = sh.onExit();
            sh.stdin().write(bytes("Java\n"));
            sh.stdin().close();
            System.out.print("sh said: " + text(sh.stdout().readUntilClose()).replace("\n", "\n         ").stripTrailing() + "\n");
            int rc = exit.get(10, TimeUnit.SECONDS);
            System.out.println("onExit() completed with " + rc);
            if (!callbackRan.await(10, TimeUnit.SECONDS)) {
                throw new IllegalStateException("exit callback did not run");
            }
        }
    }

    /** stdout as a plain java.io.InputStream, read with a BufferedReader. */
    private static void readLinesAsStream() throws IOException, InterruptedException {
        System.out.println("== ls /: stdout().inputStream() through a BufferedReader");
        try (Subprocess ls = Subprocess.builder("ls", "/").stdout(Redirect.STREAM).start();
             BufferedReader reader = new BufferedReader(
                     new InputStreamReader(ls.stdout().inputStream(), StandardCharsets.UTF_8))) {
            StringBuilder names = new StringBuilder();
            for (String line = reader.readLine(); line != null; line = reader.readLine()) {
                names.append(names.length() == 0 ? "" : " ").append(line);
            }
            System.out.println("/ holds: " + names);
            System.out.println("ls exited with " + ls.waitForExit());
        }
    }

    /** waitForExit() throws CalledProcessError for a non-zero exit; waitForExit(false) returns it. */
    private static void failingCommand() throws IOException, InterruptedException {
        System.out.println("== a failing command");
        try (Subprocess failing = Subprocess.builder("sh", "-c", "echo 'something went wrong' >&2; exit 3")
                .stderr(Redirect.STREAM)
                .start()) {
            String complaint = text(failing.stderr().readUntilClose()).strip();
            try {
                failing.waitForExit();
                System.out.println("unexpected: no exception");
            } catch (CalledProcessError e) {
                System.out.println("caught CalledProcessError: returnCode " + e.returnCode() + ", command " + e.command());
                System.out.println("  message: " + e.getMessage());
                System.out.println("  stderr: " + complaint);
            }
            System.out.println("waitForExit(false) returns " + failing.waitForExit(false) + " without throwing");
        }
    }

    /** A signal death: negative returnCode, and exitStatus() tells signal from exit code. */
    private static void terminateSleeper() throws IOException, InterruptedException {
        System.out.println("== terminate() a sleeping child");
        try (Subprocess sleeper = Subprocess.builder("sleep", "30").start()) {
            System.out.println("sleep 30 running as pid " + sleeper.pid() + ", returnCode " + sleeper.returnCode());
            sleeper.terminate();
            int rc = sleeper.waitForExit(false);
            ExitStatus status = sleeper.exitStatus();
            System.out.println("returnCode " + rc + ": exitCode " + status.exitCode() + ", signal " + status.signal()
                    + ", cpu " + status.userCpuTime().plus(status.systemCpuTime()).toMillis() + " ms");
        }
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static String text(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }
}
