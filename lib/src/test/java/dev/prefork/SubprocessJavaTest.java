package dev.prefork;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The blocking facade, as a Java caller sees it. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class SubprocessJavaTest {
  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void interactivePythonOverPipes() throws Exception {
    try (Subprocess p = Subprocess.builder("python3", "-u", "-i")
        .stdin(Redirect.STREAM).stdout(Redirect.STREAM).stderr(Redirect.STDOUT).start()) {
      assertTrue(p.pid() > 0);
      assertNull(p.returnCode());
      assertNull(p.stderr());
      p.stdout().readUntil(bytes(">>> "));
      p.stdin().write(bytes("print('hello')\n"));
      assertArrayEquals(bytes("hello\n"), p.stdout().readUntil(bytes("\n")));
      p.stdout().readUntil(bytes(">>> "));
      p.stdin().close();
      assertEquals(0, p.waitForExit());
      assertEquals(0, p.returnCode());
    }
  }

  @Test
  void waitForExitThrowsCalledProcessError() throws Exception {
    Subprocess p = Subprocess.builder(List.of("sh", "-c", "exit 3")).start();
    CalledProcessError e = assertThrows(CalledProcessError.class, p::waitForExit);
    assertEquals(3, e.returnCode());
    assertEquals(List.of("sh", "-c", "exit 3"), e.command());
    assertEquals(3, p.waitForExit(false));
    assertEquals(3, p.exitStatus().exitCode());
  }

  @Test
  void onExitAndExitCallback() throws Exception {
    Subprocess p = Subprocess.builder("sleep", "30").start();
    CompletableFuture<Integer> fromCallback = new CompletableFuture<>();
    p.setExitCallback(fromCallback::complete);
    CompletableFuture<Integer> exit = p.onExit();
    p.terminate();
    assertEquals(-15, exit.get(10, TimeUnit.SECONDS));
    assertEquals(-15, fromCallback.get(10, TimeUnit.SECONDS));
    assertEquals(15, p.exitStatus().signal());
  }

  @Test
  void streamsForJava() throws Exception {
    try (Subprocess p = Subprocess.builder("cat")
        .stdin(Redirect.STREAM).stdout(Redirect.STREAM).start()) {
      try (OutputStream out = p.stdin().outputStream()) {
        out.write(bytes("line one\nline two\n"));
      }
      try (InputStream in = p.stdout().inputStream()) {
        assertEquals("line one\nline two\n", new String(in.readAllBytes(), StandardCharsets.UTF_8));
      }
      assertEquals(0, p.waitForExit());
    }
  }

  @Test
  void missingProgramIsAnIOException() {
    IOException e = assertThrows(IOException.class, () -> Subprocess.builder("no-such-program-xyz").start());
    assertEquals("Cannot run program \"no-such-program-xyz\": error=2 (ENOENT), No such file or directory", e.getMessage());
  }

  @Test
  void closeTerminatesARunningChild() throws Exception {
    Subprocess p = Subprocess.builder("sleep", "30").start();
    p.close();
    assertEquals(-15, p.returnCode());
  }

  @Test
  void interruptingAWaitingThreadTerminatesTheChild() throws Exception {
    Subprocess p = Subprocess.builder("sleep", "30").start();
    Thread waiter = new Thread(() -> {
      try {
        p.waitForExit();
      } catch (InterruptedException | CalledProcessError expected) {
        // the child is being terminated
      }
    });
    waiter.start();
    Thread.sleep(200);
    waiter.interrupt();
    waiter.join(10_000);
    assertEquals(-15, p.onExit().get(10, TimeUnit.SECONDS));
  }
}
