package consumer;

import dev.prefork.CompletedProcess;
import dev.prefork.ForkOptions;
import dev.prefork.Prefork;
import dev.prefork.Redirect;
import dev.prefork.Subprocess;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/** A Java user's program: {@code subprocess} runs children, {@code fork} runs two workers. */
public final class App {
  public static void main(String[] args) throws Exception {
    switch (args.length > 0 ? args[0] : "") {
      case "subprocess" -> subprocess();
      case "fork" -> fork();
      default -> throw new IllegalArgumentException("usage: App subprocess|fork");
    }
  }

  private static void subprocess() throws Exception {
    CompletedProcess done = Subprocess.builder("sh", "-c", "echo out; echo err >&2; exit 3")
        .timeout(Duration.ofSeconds(30)).run();
    System.out.println("run: rc=" + done.returnCode() + " stdout=" + done.stdoutText().trim()
        + " stderr=" + done.stderrText().trim());
    try (Subprocess cat = Subprocess.builder("cat").stdin(Redirect.STREAM).stdout(Redirect.STREAM).start()) {
      cat.stdin().write("hello over a pipe\n".getBytes(StandardCharsets.UTF_8));
      String line = new String(cat.stdout().readUntil("\n".getBytes(StandardCharsets.UTF_8)), StandardCharsets.UTF_8);
      cat.stdin().close();
      System.out.println("stream: " + line.trim() + " rc=" + cat.waitForExit(Duration.ofSeconds(30)));
    }
  }

  private static void fork() throws Exception {
    int id = Prefork.forkProcesses(ForkOptions.builder()
        .numProcesses(2).maxRestarts(0).gracefulTimeout(Duration.ofSeconds(5)).build());
    // Only workers get here; the supervisor exits 0 once both have exited 0.
    System.out.println("worker " + id + " taskId=" + Prefork.taskId().getAsInt() + " pid=" + ProcessHandle.current().pid());
  }
}
