package dev.prefork;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** A child on a pseudo-terminal, as a Java caller drives it. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class PtyJavaTest {
  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static String text(byte[] b) {
    return new String(b, StandardCharsets.UTF_8);
  }

  @Test
  void interactivePythonOnATerminal() throws Exception {
    try (Subprocess p = Subprocess.builder("python3", "-i").pty(100, 30).echo(false).start()) {
      assertNull(p.stderr());
      p.stdout().readUntil(bytes(">>> "));
      p.stdin().write(bytes("import os; print(os.isatty(1), *os.get_terminal_size())\n"));
      assertEquals("True 100 30\r\n", text(p.stdout().readUntil(bytes("\r\n"))));
      p.stdout().readUntil(bytes(">>> "));
      p.resize(120, 40);
      p.stdin().write(bytes("print(*os.get_terminal_size())\n"));
      assertEquals("120 40\r\n", text(p.stdout().readUntil(bytes("\r\n"))));
      p.stdout().readUntil(bytes(">>> "));
      p.stdin().write(bytes("exit(3)\n"));
      assertEquals(3, p.waitForExit(false));
    }
  }

  @Test
  void runOnATerminalAndItsErrors() throws Exception {
    CompletedProcess run = Subprocess.builder("sh", "-c", "test -t 1 && echo tty").pty().run();
    assertEquals("tty\r\n", text(run.stdout()));
    IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> Subprocess.builder("cat").pty(80, 0));
    assertEquals("pty rows not in 1..65535: 0", bad.getMessage());
    try (Subprocess p = Subprocess.builder("true").start()) {
      IllegalStateException notPty = assertThrows(IllegalStateException.class, () -> p.resize(80, 24));
      assertTrue(notPty.getMessage().endsWith("was not started with pty()"), notPty.getMessage());
    }
    IOException missing = assertThrows(IOException.class, () -> Subprocess.builder("no-such-program-prefork").pty().start());
    assertTrue(missing.getMessage().contains("no-such-program-prefork"), missing.getMessage());
  }
}
