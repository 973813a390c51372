package dev.prefork.apicheck;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.jetbrains.kotlin.abi.tools.AbiFilters;
import org.jetbrains.kotlin.abi.tools.AbiTools;

/**
 * Compares the public API of a built jar with its committed dump, or rewrites the dump.
 *
 * <p>The dump is the one Kotlin's ABI validation writes ({@code .api} files, as
 * binary-compatibility-validator did): public and protected classes and members as the JVM sees
 * them, less what Kotlin marks {@code internal} or synthetic, read from the class files' Kotlin
 * metadata. A difference fails the build with a unified diff, so a change to the public surface
 * is always a deliberate one: the dump is updated by {@code -Dapi.update} and committed with it.
 *
 * <p>Run by exec-maven-plugin in Maven's JVM (see the parent POM), so it must not call
 * {@code System.exit}: a failure is an exception, which fails the build with its message.
 *
 * <p>Arguments: the jar, the dump file, {@code true} to rewrite the dump, and optionally a
 * comma-separated list of class-name patterns to leave out ({@code **} for any package depth).
 */
public final class ApiCheck {
  private ApiCheck() {}

  public static void main(String[] args) throws IOException {
    if (args.length < 3 || args[0] == null || args[1] == null) {
      throw new IllegalArgumentException("usage: ApiCheck <jar> <dump.api> <update:true|false> [excluded,patterns]");
    }
    File jar = new File(args[0]);
    Path dump = Path.of(args[1]);
    boolean update = Boolean.parseBoolean(args[2]);
    Set<String> excluded = new LinkedHashSet<>();
    // exec-maven-plugin passes an empty <argument> as null
    if (args.length > 3 && args[3] != null && !args[3].isBlank()) {
      for (String pattern : args[3].split(",")) {
        if (!pattern.isBlank()) excluded.add(pattern.trim());
      }
    }
    if (!jar.isFile()) {
      throw new IllegalStateException("no jar to read the public API from: " + jar + " (run the package phase first)");
    }

    AbiTools tools = AbiTools.Companion.getInstance(ApiCheck.class.getClassLoader());
    StringBuilder actual = new StringBuilder();
    tools.printJvmDump(actual, List.of(jar), new AbiFilters(Set.of(), excluded, Set.of(), Set.of()));

    if (update) {
      Files.createDirectories(dump.getParent());
      Files.writeString(dump, actual, StandardCharsets.UTF_8);
      System.out.println("[api] wrote " + dump);
      return;
    }
    if (!Files.isRegularFile(dump)) {
      throw new IllegalStateException("no public-API dump at " + dump + ": write it with  mvn -B verify -DskipTests -Dapi.update  and commit it");
    }
    String expected = Files.readString(dump, StandardCharsets.UTF_8);
    if (expected.contentEquals(actual)) {
      System.out.println("[api] " + jar.getName() + " matches " + dump.getFileName());
      return;
    }
    // the built dump beside the jar, for the diff and for a look
    Path built = jar.toPath().resolveSibling("api").resolve(dump.getFileName());
    Files.createDirectories(built.getParent());
    Files.writeString(built, actual, StandardCharsets.UTF_8);
    String diff = tools.filesDiff(dump.toFile(), built.toFile());
    throw new IllegalStateException(
        "The public API of " + jar.getName() + " differs from " + dump + " (- committed, + built):\n"
            + diff
            + "\nIf the change is deliberate, update the dumps with  mvn -B verify -DskipTests -Dapi.update"
            + "  and commit them with the change.");
  }
}
