package dev.prefork;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.slf4j.event.Level;

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
  void aWaitInterruptedAtOnceThrowsAndTerminatesTheChild() throws Exception {
    // Interrupted in its first milliseconds, while the waiter may be waiting for the exit on its own thread.
    Subprocess p = Subprocess.builder("sleep", "30").start();
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    Thread waiter = new Thread(() -> {
      try {
        p.waitForExit();
      } catch (Throwable t) {
        thrown.set(t);
      }
    });
    waiter.start();
    waiter.interrupt();
    waiter.join(10_000);
    assertFalse(waiter.isAlive());
    assertTrue(thrown.get() instanceof InterruptedException, String.valueOf(thrown.get()));
    assertEquals(-15, p.onExit().get(10, TimeUnit.SECONDS));
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
  @Test
  void inputStreamReadsAfterTheReadFunctionsAndAcrossPauses() throws Exception {
    // Some bytes before the hand-over (read with readUntil, and left in the pump's chunks), then the pipe itself, empty for a while.
    try (Subprocess p = Subprocess.builder("sh", "-c", "printf 'one\\ntwo\\n'; sleep 0.3; printf three; sleep 0.3; printf four")
        .stdout(Redirect.STREAM).start()) {
      assertArrayEquals(bytes("one\n"), p.stdout().readUntil(bytes("\n")));
      Thread.sleep(100); // "two" is in the channel by now
      InputStream in = p.stdout().inputStream();
      assertTrue(in == p.stdout().inputStream(), "one stream per pipe");
      assertEquals("two\nthreefour", new String(in.readAllBytes(), StandardCharsets.UTF_8));
      assertEquals(-1, in.read());
      assertEquals(0, p.waitForExit());
    }
  }

  @Test
  void inputStreamCarriesEightMebibytesExactly() throws Exception {
    byte[] expected = new byte[8 << 20];
    new java.util.Random(7).nextBytes(expected);
    java.nio.file.Path file = java.nio.file.Files.createTempFile("prefork-stream", ".bin");
    try {
      java.nio.file.Files.write(file, expected);
      try (Subprocess p = Subprocess.builder("cat", file.toString()).stdout(Redirect.STREAM).start();
           InputStream in = p.stdout().inputStream()) {
        java.io.ByteArrayOutputStream got = new java.io.ByteArrayOutputStream();
        byte[] buffer = new byte[65536];
        for (int n; (n = in.read(buffer, 7, 65536 - 7)) >= 0; ) got.write(buffer, 7, n); // an offset into the caller's array
        assertArrayEquals(expected, got.toByteArray());
        assertEquals(0, p.waitForExit());
      }
    } finally {
      java.nio.file.Files.delete(file);
    }
  }

  @Test
  void closingTheStreamFromAnotherThreadEndsABlockedReadAndLeaksNoFd() throws Exception {
    java.util.Set<String> before = pipes();
    try (Subprocess p = Subprocess.builder("sleep", "30").stdout(Redirect.STREAM).start()) {
      InputStream in = p.stdout().inputStream();
      CompletableFuture<Throwable> reader = CompletableFuture.supplyAsync(() -> {
        try {
          in.read();
          return null;
        } catch (IOException e) {
          return e;
        }
      });
      Thread.sleep(300);
      in.close();
      Throwable e = reader.get(5, TimeUnit.SECONDS);
      assertTrue(e instanceof IOException && e.getMessage().equals("Stream closed"), String.valueOf(e));
      assertThrows(IOException.class, in::read);
    }
    assertNoPipeBut(before);
  }

  /** The pipes this JVM holds fds of, by inode (other tests' fds come and go meanwhile: a count would not do). */
  private static java.util.Set<String> pipes() throws IOException {
    java.util.Set<String> pipes = new java.util.HashSet<>();
    try (java.util.stream.Stream<java.nio.file.Path> fds = java.nio.file.Files.list(java.nio.file.Path.of("/proc/self/fd"))) {
      for (java.nio.file.Path fd : (Iterable<java.nio.file.Path>) fds::iterator) {
        try {
          String target = java.nio.file.Files.readSymbolicLink(fd).toString();
          if (target.startsWith("pipe:")) pipes.add(target);
        } catch (IOException gone) {
          // closed meanwhile
        }
      }
    }
    return pipes;
  }

  /** Within 3 s, this JVM holds no pipe that it did not hold [before]: the child's pipes are closed. */
  private static void assertNoPipeBut(java.util.Set<String> before) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(3);
    java.util.Set<String> added = new java.util.HashSet<>(pipes());
    added.removeAll(before);
    while (!added.isEmpty() && System.nanoTime() < deadline) {
      Thread.sleep(20);
      added = new java.util.HashSet<>(pipes());
      added.removeAll(before);
    }
    assertEquals(java.util.Set.of(), added);
  }
  @Test
  void aStreamTakenAfterCloseIsClosedAndHoldsNoFd() throws Exception {
    Subprocess.builder("true").start().waitForExit(); // the reactor's own fds (an eventfd, epoll) exist from the first spawn on
    java.util.Set<String> before = pipes();
    Subprocess p = Subprocess.builder("sh", "-c", "echo hi; sleep 30").stdout(Redirect.STREAM).start();
    p.close();
    InputStream in = p.stdout().inputStream();
    IOException e = assertThrows(IOException.class, in::read);
    assertEquals("Stream closed", e.getMessage());
    assertNoPipeBut(before);
  }

  @Test
  void runCapturesOutputWithInput() throws Exception {
    CompletedProcess done = Subprocess.builder("sh", "-c", "tr a-z A-Z; echo done >&2")
        .input(bytes("hello")).run();
    assertEquals(0, done.returnCode());
    assertEquals("HELLO", done.stdoutText());
    assertEquals("done\n", done.stderrText(StandardCharsets.US_ASCII));
    assertEquals(0, done.exitStatus().exitCode());
    assertEquals(List.of("sh", "-c", "tr a-z A-Z; echo done >&2"), done.command());
  }

  @Test
  void inputToAChildThatReadsNothing() throws Exception {
    assertEquals(0, Subprocess.builder("true").input(new byte[50_000_000]).run().returnCode());
  }

  @Test
  void checkedRunThrowsWithTheOutput() {
    CalledProcessError e = assertThrows(CalledProcessError.class,
        () -> Subprocess.builder("sh", "-c", "echo out; echo err >&2; exit 2").check(true).run());
    assertEquals(2, e.returnCode());
    assertArrayEquals(bytes("out\n"), e.stdout());
    assertArrayEquals(bytes("err\n"), e.stderr());
    // waitForExit's error carries no output: none was captured.
    CalledProcessError fromWait = new CalledProcessError(1, List.of("x"));
    assertNull(fromWait.stdout());
  }

  @Test
  void runTimeoutTerminatesTheChildAndKeepsThePartialOutput() throws Exception {
    SubprocessTimeoutException e = assertThrows(SubprocessTimeoutException.class,
        () -> Subprocess.builder("sh", "-c", "echo $$; echo started; exec sleep 30")
            .timeout(Duration.ofMillis(500)).run());
    assertEquals(Duration.ofMillis(500), e.timeout());
    assertEquals("Command [sh, -c, echo $$; echo started; exec sleep 30] timed out after 500 ms", e.getMessage());
    String[] lines = new String(e.stdout(), StandardCharsets.UTF_8).split("\n");
    assertEquals("started", lines[1]);
    assertTrue(!Files.exists(Path.of("/proc/" + lines[0])), "child " + lines[0] + " is reaped");
  }

  @Test
  void runOutputCap() {
    SubprocessOutputLimitException e = assertThrows(SubprocessOutputLimitException.class,
        () -> Subprocess.builder("cat", "/dev/zero").maxOutput(100_000).run());
    assertEquals(StdStream.STDOUT, e.stream());
    assertEquals(100_000, e.limit());
    assertEquals(List.of("cat", "/dev/zero"), e.command());
  }

  @Test
  void waitForExitWithATimeout() throws Exception {
    Subprocess p = Subprocess.builder("sleep", "30").start();
    SubprocessTimeoutException e = assertThrows(SubprocessTimeoutException.class, () -> p.waitForExit(Duration.ofMillis(200)));
    assertEquals("Command [sleep, 30] timed out after 200 ms", e.getMessage());
    assertEquals(-15, p.onExit().get(10, TimeUnit.SECONDS));
    assertEquals(7, Subprocess.builder("sh", "-c", "exit 7").start().waitForExit(Duration.ofSeconds(10), false));
  }

  @Test
  void environmentEdits() throws Exception {
    assertTrue(System.getenv("HOME") != null, "HOME is inherited, so removing it shows");
    SubprocessBuilder b = Subprocess.builder("sh", "-c", "printf '%s|%s|%s' \"$ADDED\" \"$PATH\" \"${HOME-unset}\"")
        .env("ADDED", "1").env("PATH", "/elsewhere").removeEnv("HOME");
    assertEquals("1|/elsewhere|unset", b.run().stdoutText());
    Map<String, String> env = b.environment();
    env.put("ADDED", "2");
    assertEquals("2|/elsewhere|unset", b.run().stdoutText());
    IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> b.env("NO=GOOD", "x"));
    assertEquals("'=' in environment variable name: \"NO=GOOD\"", bad.getMessage());
  }

  @Test
  void outputLinesOneAtATime() throws Exception {
    try (Subprocess p = Subprocess.builder("sh", "-c", "echo a; sleep 0.2; echo b >&2; sleep 0.2; printf c")
        .stdout(Redirect.STREAM).stderr(Redirect.STREAM).start()) {
      List<OutputLine> lines = new ArrayList<>();
      p.forEachOutputLine(lines::add);
      assertEquals(List.of(new OutputLine(StdStream.STDOUT, "a"), new OutputLine(StdStream.STDERR, "b"),
          new OutputLine(StdStream.STDOUT, "c")), lines);
      assertEquals(StdStream.STDERR, lines.get(1).stream());
      assertEquals("b", lines.get(1).text());
      assertEquals(0, p.waitForExit());
    }
  }

  @Test
  void outputLinesWithoutPipesIsAnError() throws Exception {
    try (Subprocess p = Subprocess.builder("true").stdout(Redirect.DEVNULL).start()) {
      IllegalStateException e = assertThrows(IllegalStateException.class, () -> p.forEachOutputLine(line -> { }));
      assertEquals("neither stdout nor stderr is Redirect.STREAM: [true]", e.getMessage());
    }
  }

  @Test
  void outputToLogger() throws Exception {
    RecordingLogger logger = new RecordingLogger("child");
    try (Subprocess p = Subprocess.builder("sh", "-c", "echo one; echo two >&2; seq 1 5000")
        .stdout(Redirect.toLogger(logger, Level.INFO)).stderr(Redirect.toLogger(logger, Level.ERROR)).start()) {
      assertNull(p.stdout());
      assertEquals(0, p.waitForExit(Duration.ofSeconds(10)));
      List<RecordingLogger.Record> records = logger.records();
      assertEquals(5002, records.size());
      // stdout and stderr are read apart, so only each stream's own order is kept
      assertEquals(List.of(new RecordingLogger.Record(Level.ERROR, "two")),
          records.stream().filter(r -> r.getLevel() == Level.ERROR).toList());
      List<RecordingLogger.Record> info = records.stream().filter(r -> r.getLevel() == Level.INFO).toList();
      assertEquals(5001, info.size());
      assertEquals(new RecordingLogger.Record(Level.INFO, "one"), info.get(0));
      assertEquals(new RecordingLogger.Record(Level.INFO, "5000"), info.get(info.size() - 1));
    }
  }
}
