package dev.prefork.consumers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The Kotlin consumer built by Gradle (src/it/kotlin-gradle) against this build's artifacts in
 * target/it-repo, which invoker:install filled. Needs a Gradle the Kotlin Gradle plugin supports
 * on PATH; without one the test is skipped and says why (see docs/depending.md, "The public API and consumer smoke tests").
 */
@Timeout(value = 15, unit = TimeUnit.MINUTES)
class GradleConsumerTest {
  /** The oldest Gradle the Kotlin Gradle plugin 2.3 supports. */
  private static final List<Integer> MIN_GRADLE = List.of(7, 6, 3);

  @Test
  void kotlinConsumerBuiltByGradle() throws Exception {
    Optional<Path> gradle = onPath("gradle");
    String why = null;
    if (gradle.isEmpty()) {
      why = "no gradle on PATH (Gradle is not on Maven Central; Debian's gradle package is 4.4.1)";
    } else {
      String version = run(List.of(gradle.get().toString(), "--version"), Path.of("."), 5).output();
      Matcher m = Pattern.compile("Gradle (\\d+)\\.(\\d+)(?:\\.(\\d+))?").matcher(version);
      if (!m.find()) {
        why = gradle.get() + " --version names no Gradle version: " + version;
      } else if (compare(m, MIN_GRADLE) < 0) {
        why = gradle.get() + " is Gradle " + m.group(0).substring(7) + ", older than the Kotlin Gradle plugin "
            + System.getProperty("kotlin.version") + " supports (7.6.3)";
      }
    }
    if (why != null) {
      String message = "Gradle consumer skipped: " + why + "; the Kotlin consumer is built by Maven (src/it/kotlin-maven)";
      System.out.println("[consumers] " + message);
      Assumptions.abort(message);
    }

    Path work = Path.of("target", "gradle-it").toAbsolutePath();
    deleteTree(work);
    copyTree(Path.of("src", "it", "kotlin-gradle"), work.resolve("kotlin-gradle"));
    copyTree(Path.of("src", "it", "kotlin-maven", "src"), work.resolve("kotlin-maven").resolve("src"));
    Result result = run(List.of(gradle.get().toString(), "--no-daemon", "--stacktrace",
        "-Dmaven.repo.local=" + Path.of(System.getProperty("it.repository")).toAbsolutePath(),
        "-PpreforkRepository=" + Path.of(System.getProperty("it.repository")).toAbsolutePath(),
        "-PpreforkVersion=" + System.getProperty("prefork.version"),
        "-PnativeFlags=" + System.getProperty("native.flags"),
        "test"), work.resolve("kotlin-gradle"), 12);
    assertEquals(0, result.exitCode(), result.output());
  }

  private static int compare(Matcher version, List<Integer> min) {
    for (int i = 0; i < min.size(); i++) {
      String part = version.group(i + 1);
      int v = part == null ? 0 : Integer.parseInt(part);
      if (v != min.get(i)) return Integer.compare(v, min.get(i));
    }
    return 0;
  }

  private static Optional<Path> onPath(String name) {
    for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
      Path candidate = Path.of(dir.isEmpty() ? "." : dir, name);
      if (Files.isExecutable(candidate)) return Optional.of(candidate);
    }
    return Optional.empty();
  }

  private record Result(int exitCode, String output) {}

  /** Runs a command to its end within {@code minutes}; whatever it started is killed either way. */
  private static Result run(List<String> command, Path dir, int minutes) throws Exception {
    Path log = Files.createTempFile("gradle", ".log");
    Process process = new ProcessBuilder(command).directory(dir.toFile())
        .redirectErrorStream(true).redirectOutput(log.toFile()).start();
    try {
      if (!process.waitFor(minutes, TimeUnit.MINUTES)) {
        fail(command + " did not finish within " + minutes + " minutes:\n" + Files.readString(log));
      }
      return new Result(process.exitValue(), Files.readString(log));
    } finally {
      process.descendants().forEach(ProcessHandle::destroyForcibly);
      process.destroyForcibly();
      process.waitFor(30, TimeUnit.SECONDS);
      Files.deleteIfExists(log);
    }
  }

  private static void copyTree(Path from, Path to) throws IOException {
    try (Stream<Path> paths = Files.walk(from)) {
      for (Path p : (Iterable<Path>) paths::iterator) {
        Path target = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) Files.createDirectories(target);
        else Files.copy(p, target);
      }
    }
  }

  private static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) return;
    try (Stream<Path> paths = Files.walk(dir)) {
      List<Path> all = new ArrayList<>(paths.sorted(Comparator.reverseOrder()).toList());
      for (Path p : all) Files.delete(p);
    }
  }
}
