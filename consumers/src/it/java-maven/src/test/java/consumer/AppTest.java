package consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.prefork.Subprocess;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Starts the app in a fresh JVM, as its user would, and reads what it printed. */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class AppTest {
  private static final String REPOSITORY = System.getProperty("app.repository");

  @Test
  void subprocessCapturesAndStreams() throws Exception {
    Output out = runApp("subprocess");
    assertEquals(List.of("run: rc=3 stdout=out stderr=err", "stream: hello over a pipe rc=0"), out.stdout, out.toString());
  }

  @Test
  void twoWorkersReportTheirTaskIds() throws Exception {
    Output out = runApp("fork");
    List<String> ids = new ArrayList<>();
    for (String line : out.stdout) {
      if (line.startsWith("worker ")) ids.add(line.split(" ")[1] + "/" + line.split(" ")[2]);
    }
    ids.sort(null);
    assertEquals(List.of("0/taskId=0", "1/taskId=1"), ids, out.toString());
  }

  @Test
  void preforkIsTheJustBuiltArtifactFromTheBuildsOwnRepository() throws Exception {
    Path repository = Path.of(REPOSITORY).toRealPath();
    Path jar = Path.of(Subprocess.class.getProtectionDomain().getCodeSource().getLocation().toURI()).toRealPath();
    assertTrue(jar.startsWith(repository.resolve("dev/prefork/prefork")), jar + " is not in " + repository);
    assertTrue(!jar.startsWith(Path.of(System.getProperty("user.home"), ".m2").toRealPath()), jar + " is in ~/.m2");
    for (String entry : System.getProperty("app.classpath").split(File.pathSeparator)) {
      if (entry.contains("dev/prefork")) assertTrue(Path.of(entry).toRealPath().startsWith(repository), entry);
    }
  }

  /** The app's exit code must be 0, and its stderr free of any JVM or SLF4J warning. */
  private static Output runApp(String mode) throws Exception {
    List<String> command = new ArrayList<>();
    // A JVM keeps a signal it inherited as ignored (a build under nohup or in a shell's background
    // ignores SIGHUP and SIGINT), and the supervisor then rightly warns about it: start the app as
    // a shell in the foreground would, with the default dispositions. env execs the JVM.
    command.addAll(List.of("env", "--default-signal=HUP,INT,TERM"));
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(Arrays.asList(System.getProperty("app.jvmFlags").trim().split("\\s+")));
    command.addAll(List.of("-cp", System.getProperty("app.classpath"), "consumer.App", mode));
    Path stdout = Files.createTempFile("app-stdout", ".txt");
    Path stderr = Files.createTempFile("app-stderr", ".txt");
    Process process = new ProcessBuilder(command).redirectOutput(stdout.toFile()).redirectError(stderr.toFile()).start();
    try {
      if (!process.waitFor(2, TimeUnit.MINUTES)) fail("the app did not exit within 2 minutes: " + read(stdout, stderr));
      Output out = read(stdout, stderr);
      assertEquals(0, process.exitValue(), out.toString());
      for (String line : out.stderr) {
        assertTrue(!line.contains("WARNING") && !line.contains(" WARN ") && !line.contains("SLF4J("), "stderr: " + out);
      }
      return out;
    } finally {
      // workers first: they are the supervisor's children
      process.descendants().forEach(ProcessHandle::destroyForcibly);
      process.destroyForcibly();
      process.waitFor(30, TimeUnit.SECONDS);
      Files.deleteIfExists(stdout);
      Files.deleteIfExists(stderr);
    }
  }

  private static Output read(Path stdout, Path stderr) throws IOException {
    return new Output(Files.readAllLines(stdout), Files.readAllLines(stderr));
  }

  private record Output(List<String> stdout, List<String> stderr) {
    @Override
    public String toString() {
      return "stdout " + stdout + ", stderr " + stderr;
    }
  }
}
