package dev.prefork;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The Prefork facade and ForkOptions as Java sees them (forkProcesses itself runs in fixture JVMs). */
class PreforkJavaTest {
  @Test
  void cpuCountAndTaskId() {
    assertTrue(Prefork.cpuCount() >= 1);
    assertFalse(Prefork.taskId().isPresent());
  }

  @Test
  void bindSockets() throws Exception {
    List<ServerSocketChannel> socks = Prefork.bindSockets(0, "127.0.0.1");
    try {
      assertEquals(1, socks.size());
      InetSocketAddress local = (InetSocketAddress) socks.get(0).getLocalAddress();
      assertEquals("127.0.0.1", local.getAddress().getHostAddress());
      assertTrue(local.getPort() > 0);
    } finally {
      for (ServerSocketChannel s : socks) s.close();
    }
  }

  @Test
  void forkOptionsBuilder() {
    WorkerListener listener = event -> System.out.println(event.id() + " " + event.pid());
    ForkOptions options = ForkOptions.builder()
        .numProcesses(4)
        .maxRestarts(10)
        .restartWindow(Duration.ofMinutes(1))
        .backoff(Duration.ofMillis(100), Duration.ofSeconds(5))
        .gracefulTimeout(Duration.ofSeconds(10))
        .workerCommand("java", "-cp", "app.jar", "Main")
        .listener(listener)
        .build();
    assertEquals(4, options.numProcesses());
    assertEquals(10, options.maxRestarts());
    assertEquals(Duration.ofMinutes(1), options.restartWindow());
    assertEquals(Duration.ofSeconds(5), options.backoffMax());
    assertEquals(List.of("java", "-cp", "app.jar", "Main"), options.workerCommand());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ForkOptions.builder().maxRestarts(-1));
    assertEquals("maxRestarts < 0: -1", e.getMessage());
  }

  @Test
  void serverOptionsAndWorkerFacade() {
    ForkOptions options = ForkOptions.builder()
        .inheritedChannel(true)
        .explicitReady(true)
        .readyTimeout(Duration.ofSeconds(90))
        .drainTimeout(Duration.ofSeconds(5))
        .build();
    assertTrue(options.inheritedChannel());
    assertTrue(options.explicitReady());
    assertEquals(Duration.ofSeconds(90), options.readyTimeout());
    assertEquals(Duration.ofSeconds(5), options.drainTimeout());
    assertFalse(ForkOptions.builder().build().explicitReady());
    assertEquals("readyTimeout <= 0: PT0S",
        assertThrows(IllegalArgumentException.class, () -> ForkOptions.builder().readyTimeout(Duration.ZERO)).getMessage());
    assertEquals("drainTimeout < 0: PT-1S",
        assertThrows(IllegalArgumentException.class, () -> ForkOptions.builder().drainTimeout(Duration.ofSeconds(-1))).getMessage());
    // Outside a worker both are no-ops, so one main can call them in the supervisor too.
    Worker.ready();
    Worker.onStopAccepting(() -> { throw new AssertionError("never runs outside a worker"); });
    Worker.onDrained(() -> { throw new AssertionError("never runs outside a worker"); });
    assertFalse(Worker.isStopping());
    assertEquals(Duration.ofSeconds(10), Worker.drainTimeout());
  }

  @Test
  void operatorOptionsAndPolicy() {
    ForkOptions options = ForkOptions.builder()
        .numProcesses(2)
        .maxRestarts(1)
        .backoff(Duration.ofMillis(100), Duration.ofSeconds(1))
        .workerTimeout(Duration.ofSeconds(30))
        .maxWorkerRss(1L << 30)
        .maxWorkerAge(Duration.ofHours(6), Duration.ofMinutes(30))
        .build();
    assertEquals(Duration.ofSeconds(30), options.workerTimeout());
    assertEquals(1L << 30, options.maxWorkerRss());
    assertEquals(Duration.ofMinutes(30), options.maxWorkerAgeJitter());
    assertEquals("workerTimeout < PT0.1S: PT0.05S",
        assertThrows(IllegalArgumentException.class, () -> ForkOptions.builder().workerTimeout(Duration.ofMillis(50))).getMessage());
    assertEquals("maxWorkerRss < 0: -1",
        assertThrows(IllegalArgumentException.class, () -> ForkOptions.builder().maxWorkerRss(-1)).getMessage());
    // The supervisor's own restart decision, driven by a test's clock.
    RestartPolicy policy = RestartPolicy.of(options);
    assertEquals(1, policy.maxRestarts());
    RestartState state = policy.initial(options.numProcesses());
    RestartStep first = policy.onExit(state, 1, false, 5_000_000L, 0L);
    assertEquals(new RestartDecision.Restart(1, 100_000_000L), first.decision());
    RestartStep second = policy.onExit(first.state(), 1, false, 5_000_000L, 200_000_000L);
    assertTrue(second.decision() instanceof RestartDecision.GiveUp);
    assertTrue(second.state().gaveUp());
    assertFalse(second.state().done());
    // Worker.healthCheck is a no-op outside a worker's timeout: it is set, never called here.
    Worker.healthCheck(() -> { throw new AssertionError("never runs outside a worker"); });
  }
}
