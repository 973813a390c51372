package dev.prefork.supervisor

import io.github.oshai.kotlinlogging.KotlinLogging
import java.io.File
import java.io.IOException
import java.nio.file.AccessDeniedException
import java.nio.file.Files
import java.nio.file.LinkOption
import java.nio.file.Path
import java.nio.file.StandardCopyOption
import java.nio.file.attribute.PosixFilePermission
import java.nio.file.attribute.PosixFilePermissions
import java.security.MessageDigest

private val logger = KotlinLogging.logger {}

/**
 * A class-data archive of this application's workers (dynamic CDS, JDK 13+): the classes a
 * worker loads on its way to `forkProcesses` (the JDK's beyond its default archive, the
 * application's, its libraries'), parsed, verified and laid out once, then mapped by every
 * later worker instead of loaded again, and shared between them in memory.
 *
 * It is made by a training run: one extra worker JVM, started as a spare with
 * `-XX:ArchiveClassesAtExit`, that runs `main` up to `forkProcesses` (and through a spare's
 * warm-up, if the application has one), then is told to exit; the JVM writes the archive as
 * it exits, to a temporary file that is then moved into place. Workers started once it is in
 * place get `-XX:SharedArchiveFile`; so do later runs of the same application, which find it
 * in [file]. Its name holds a digest of the JDK, the class path (each jar's path, size and
 * modification time) and the JVM options: a new build or another JDK gets an archive of its
 * own, and the older ones of the same application are deleted.
 *
 * A JVM that cannot map the archive runs without it, as always with CDS; its CDS warnings are
 * turned off on the worker's command line (`-Xlog:cds*=off`) because there is nothing a user
 * could do about them at run time.
 */
internal class StartupArchive private constructor(
    /** Where the archive is, or goes once trained. */
    val file: Path,
    /** A failed training for this key leaves this behind, so that later runs do not try again. */
    private val failedMarker: Path,
) {
    /** The training's output, moved to [file] when it is complete. */
    private val trainingFile: Path = file.resolveSibling("${file.fileName}.${ProcessHandle.current().pid()}.tmp")

    @Volatile private var installed = Files.isRegularFile(file)

    /** Whether workers start from the archive now. */
    val ready: Boolean get() = installed

    /** Whether a training run is worth making: no archive yet, and no earlier training for the same key failed. */
    val needsTraining: Boolean get() = !installed && !Files.exists(failedMarker)

    /** [command] (a java launcher's) with the flags that map the archive, once it exists. */
    fun workerCommand(command: List<String>): List<String> =
        if (installed) withJvmOptions(command, "-XX:SharedArchiveFile=$file", QUIET) else command

    /** [command] with the flags that write the archive when the JVM exits. */
    fun trainerCommand(command: List<String>): List<String> {
        Files.deleteIfExists(trainingFile)
        return withJvmOptions(command, "-XX:ArchiveClassesAtExit=$trainingFile", QUIET)
    }

    /**
     * The training run exited with [exitCode]: moves its archive into place, or remembers that
     * this application cannot have one (one log line either way). Returns whether it is in place.
     */
    fun trained(exitCode: Int?, tookMillis: Long): Boolean {
        try {
            if (exitCode == 0 && Files.isRegularFile(trainingFile) && Files.size(trainingFile) > 0) {
                Files.move(trainingFile, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING)
                installed = true
                logger.info { "start-up archive $file made in $tookMillis ms (${Files.size(file) / 1024} KiB): workers started from now on map it" }
                pruneOthers()
                return true
            }
            Files.deleteIfExists(trainingFile)
            Files.write(failedMarker, "training exited with $exitCode and wrote no archive\n".toByteArray())
            logger.warn {
                "start-up archive: the training JVM exited with ${exitCode ?: "a signal"} and wrote no archive; " +
                    "workers start without one (delete $failedMarker to try again)"
            }
        } catch (e: IOException) {
            logger.warn { "start-up archive: cannot put the trained archive in place ($e); workers start without one" }
        }
        return false
    }

    /** Archives of earlier builds of this application: never mapped again. */
    private fun pruneOthers() {
        val name = file.fileName.toString()
        val prefix = name.substring(0, name.lastIndexOf('-') + 1)
        Files.newDirectoryStream(file.parent, "$prefix*").use { siblings ->
            for (sibling in siblings) {
                val other = sibling.fileName.toString()
                if (other != name && (other.endsWith(".jsa") || other.endsWith(".failed"))) Files.deleteIfExists(sibling)
            }
        }
    }

    companion object {
        /** Turns off the JVM's CDS warnings on a worker's command line: a bad archive is not the worker's failure. */
        private const val QUIET = "-Xlog:cds*=off"

        /**
         * Flags by which a command line already says how its JVM shares class data: prefork then
         * stays out of it (`-Xshare:auto`, the default, is not one: a JVM that cannot map an
         * archive runs without it; under `-Xshare:on` it would not start).
         */
        private val OWN_SHARING = listOf(
            "-Xshare:off", "-Xshare:on", "-Xshare:dump", "-XX:SharedArchiveFile", "-XX:ArchiveClassesAtExit", "-XX:+AutoCreateSharedArchive",
            "-XX:AOTCache", "-XX:AOTMode", "-XX:AOTConfiguration", "-XX:SharedClassListFile", "-XX:DumpLoadedClassList",
            "-XX:-UseSharedSpaces", "-XX:+RecordDynamicDumpInfo",
        )

        /**
         * The archive for workers started with [command] (this JVM's own command line, re-executed),
         * kept in [directory] (the default when null); null, with one log line saying why, when
         * there can be none.
         */
        fun of(command: List<String>, directory: Path?): StartupArchive? {
            val why = unsupported(command)
            if (why != null) {
                logger.info { "start-up archive: off, $why" }
                return null
            }
            val dir = try {
                usableDirectory(directory ?: defaultDirectory())
            } catch (e: IOException) {
                logger.warn { "start-up archive: off, ${e.message}" }
                return null
            }
            val classPath = classPath()
            val key = digest(command, classPath)
            val base = applicationName(command).replace(Regex("[^A-Za-z0-9._]"), "_")
            return StartupArchive(dir.resolve("$base-$key.jsa"), dir.resolve("$base-$key.failed"))
        }

        /** Why workers of [command] cannot have an archive, or null when they can. */
        private fun unsupported(command: List<String>): String? {
            val options = WorkerCommand.jvmOptions(command)
            options.firstOrNull { option -> OWN_SHARING.any { option.startsWith(it) } }?.let {
                return "the command line sets class-data sharing itself ($it)"
            }
            val notJars = classPath().filter { !Files.isRegularFile(Path.of(it)) }
            if (notJars.isNotEmpty()) {
                return "the class path holds what is not a jar (${notJars.joinToString()}); the JVM archives classes from jars only"
            }
            return null
        }

        /** `<java.io.tmpdir>/prefork-<uid>`: private to this user, like every directory an archive is read from. */
        private fun defaultDirectory(): Path {
            val uid = Files.getAttribute(Path.of("/proc/self"), "unix:uid")
            return Path.of(System.getProperty("java.io.tmpdir"), "prefork-$uid")
        }

        /**
         * [dir], created (owner-only) when missing. Refused when it is not a directory, or when
         * another user could replace an archive in it: a JVM runs whatever classes an archive holds.
         */
        private fun usableDirectory(dir: Path): Path {
            if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
                try {
                    Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")))
                } catch (e: IOException) {
                    throw IOException("cannot create the archive directory $dir (${e.message ?: e.javaClass.simpleName})", e)
                }
            }
            if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) throw IOException("$dir is not a directory")
            val permissions = try {
                Files.getPosixFilePermissions(dir, LinkOption.NOFOLLOW_LINKS)
            } catch (e: AccessDeniedException) {
                throw IOException("cannot read the archive directory $dir")
            }
            val owner = Files.getAttribute(dir, "unix:uid", LinkOption.NOFOLLOW_LINKS)
            val self = Files.getAttribute(Path.of("/proc/self"), "unix:uid")
            if (owner != self || PosixFilePermission.GROUP_WRITE in permissions || PosixFilePermission.OTHERS_WRITE in permissions) {
                throw IOException("the archive directory $dir is not this user's alone (owner uid $owner, ${PosixFilePermissions.toString(permissions)})")
            }
            if (!Files.isWritable(dir)) throw IOException("the archive directory $dir is not writable")
            return dir
        }

        /**
         * The class path the JVM archives from and checks an archive against: `java.class.path`
         * and, transitively, the `Class-Path` of each jar's manifest (`java -jar app.jar` with
         * its libraries beside it, as Spring Boot's extracted layout has it).
         */
        private fun classPath(): List<String> {
            val entries = LinkedHashSet<String>()
            fun add(entry: String) {
                if (!entries.add(entry)) return
                val file = File(entry)
                if (!file.isFile) return
                val manifestPath = try {
                    java.util.jar.JarFile(file).use { it.manifest?.mainAttributes?.getValue("Class-Path") }
                } catch (e: IOException) {
                    null
                } ?: return
                for (relative in manifestPath.split(' ').filter { it.isNotBlank() }) {
                    val resolved = try {
                        file.absoluteFile.parentFile.toURI().resolve(relative).let { if (it.scheme == "file") File(it).path else null }
                    } catch (e: IllegalArgumentException) {
                        null
                    }
                    resolved?.let(::add)
                }
            }
            System.getProperty("java.class.path", "").split(File.pathSeparatorChar).forEach { add(it.ifEmpty { "." }) }
            return entries.toList()
        }

        /** What makes an archive of one JVM usable by another: the JDK, the class path's jars as they are now, the JVM options. */
        private fun digest(command: List<String>, classPath: List<String>): String {
            val sha = MessageDigest.getInstance("SHA-256")
            fun add(text: String) = sha.update((text + "\u0000").toByteArray())
            add(System.getProperty("java.home"))
            add(System.getProperty("java.vm.version"))
            for (entry in classPath) {
                val file = File(entry).absoluteFile
                add("${file.path} ${file.length()} ${file.lastModified()}")
            }
            WorkerCommand.jvmOptions(command).forEach(::add)
            return sha.digest().take(8).joinToString("") { "%02x".format(it) }
        }

        /** The jar's name for `-jar app.jar`, the main class's otherwise. */
        private fun applicationName(command: List<String>): String {
            val rest = command.drop(1 + WorkerCommand.jvmOptions(command).size)
            return when {
                rest.firstOrNull() == "-jar" -> rest.getOrNull(1)?.let { Path.of(it).fileName.toString().removeSuffix(".jar") } ?: "app"
                rest.firstOrNull() in listOf("-m", "--module") -> rest.getOrNull(1)?.substringBefore('/') ?: "app"
                else -> rest.firstOrNull()?.substringAfterLast('.') ?: "app"
            }
        }

        /** [command] with [added] right after the launcher, before the options of the command itself (which therefore win). */
        private fun withJvmOptions(command: List<String>, vararg added: String): List<String> =
            listOf(command[0]) + added + command.drop(1)
    }
}
