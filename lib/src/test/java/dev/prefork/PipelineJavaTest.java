package dev.prefork;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.prefork.testing.ProcFs;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Pipelines through the blocking facade, as a Java caller writes them. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class PipelineJavaTest {
  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static int openFds() {
    return ProcFs.INSTANCE.openFds(ProcFs.INSTANCE.getSelfPid()).size();
  }

  @Test
  void streamsThroughThreeMembers() throws Exception {
    try (Pipeline p = Pipeline.builder(
            Subprocess.builder("cat").stdin(Redirect.STREAM),
            Subprocess.builder("tr", "a-z", "A-Z"),
            Subprocess.builder("cat").stdout(Redirect.STREAM))
        .start()) {
      try (OutputStream in = p.stdin().outputStream()) {
        in.write(bytes("one\ntwo\n"));
      }
      try (InputStream out = p.stdout().inputStream()) {
        assertEquals("ONE\nTWO\n", new String(out.readAllBytes(), StandardCharsets.UTF_8));
      }
      assertEquals(0, p.waitForExit());
      assertEquals(Arrays.asList(0, 0, 0), p.returnCodes());
      assertEquals(3, p.members().size());
      assertEquals(List.of("tr", "a-z", "A-Z"), p.members().get(1).command());
    }
  }

  @Test
  void runCapturesAndPipefailChecks() throws Exception {
    CompletedPipeline done = Pipeline.builder(Subprocess.builder("sort"), Subprocess.builder("head", "-1"))
        .input(bytes("b\na\n")).timeout(Duration.ofSeconds(20)).check(true).run();
    assertEquals("a\n", done.stdoutText());
    assertEquals(List.of(0, 0), done.returnCodes());
    assertEquals(0, done.returnCode());

    CalledProcessError e = assertThrows(CalledProcessError.class,
        () -> Pipeline.builder(Subprocess.builder("sh", "-c", "exit 3"), Subprocess.builder("cat"))
            .pipefail(true).check(true).run());
    assertEquals(3, e.returnCode());
    assertEquals(List.of("sh", "-c", "exit 3"), e.command());
    assertArrayEquals(new byte[0], e.stdout());

    try (Pipeline p = Pipeline.builder(Subprocess.builder("sh", "-c", "exit 3"), Subprocess.builder("true")).start()) {
      assertEquals(0, p.waitForExit()); // bash's $? without pipefail
      assertEquals(Arrays.asList(3, 0), p.returnCodes());
      assertEquals(0, p.onExit().get(10, TimeUnit.SECONDS));
    }
  }

  @Test
  void missingMemberIsAnIOExceptionAndLeavesNothing() throws Exception {
    Subprocess.builder("true").run(); // the reactor and its fds exist before the count
    int fdsBefore = openFds();
    IOException e = assertThrows(IOException.class, () -> Pipeline.builder(
            Subprocess.builder("sleep", "30"), Subprocess.builder("no-such-program-xyz"), Subprocess.builder("cat"))
        .start());
    assertEquals("Cannot run program \"no-such-program-xyz\": error=2 (ENOENT), No such file or directory", e.getMessage());
    // The reactor closes a reaped child's pidfd just after the reap: give it a moment.
    for (int i = 0; i < 50 && openFds() > fdsBefore; i++) Thread.sleep(100);
    assertTrue(openFds() <= fdsBefore, () -> "fds: " + openFds() + ", before: " + fdsBefore);
    assertEquals(List.of(), ProcFs.INSTANCE.zombieChildren());
  }

  @Test
  void closeAndTimeoutEndEveryMember() throws Exception {
    Pipeline p = Pipeline.builder(Subprocess.builder("yes"), Subprocess.builder("cat"), Subprocess.builder("sleep", "30")).start();
    p.close();
    assertEquals(-15, p.returnCodes().get(2)); // sleep; yes and cat may have seen their neighbour go first
    for (Subprocess member : p.members()) {
      assertNotNull(member.returnCode());
      assertNull(ProcFs.INSTANCE.state(member.pid()));
    }

    Pipeline q = Pipeline.builder(Subprocess.builder("sleep", "30"), Subprocess.builder("cat")).start();
    SubprocessTimeoutException timedOut = assertThrows(SubprocessTimeoutException.class, () -> q.waitForExit(Duration.ofMillis(300)));
    assertEquals(List.of("sleep", "30", "|", "cat"), timedOut.command());
    assertNotNull(q.onExit().get(20, TimeUnit.SECONDS));
    for (Subprocess member : q.members()) {
      assertNotNull(member.returnCode());
      assertNull(ProcFs.INSTANCE.state(member.pid()));
    }
    q.close();
  }
}
