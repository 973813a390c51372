package dev.prefork.supervisor

import dev.prefork.log.debug
import dev.prefork.log.info
import dev.prefork.log.logger
import dev.prefork.log.warn
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
import java.util.zip.ZipFile

private val logger = logger("dev.prefork.supervisor.StartupArchive")

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
 * in [file].
 *
 * Its name is `<application>-<instance>-<content>.jsa`. The instance digest covers what makes
 * two runs the same application configured the same way (the main jar or class, the working
 * directory, the JVM options, `JDK_JAVA_OPTIONS` and `JAVA_TOOL_OPTIONS`); the content digest
 * covers what the archive's classes come from: the JDK, and every jar of the class path by the
 * name, size and CRC of each of its entries. A jar rebuilt with the same size and modification
 * time (reproducible builds fix both) is still told apart, which matters because the JVM
 * itself checks only those two: it would map the old classes. A new build or JDK gets an
 * archive of its own, and the older ones of the same instance are deleted.
 *
 * A JVM that cannot map the archive runs without it, as always with CDS; its CDS warnings are
 * turned off on the worker's command line (`-Xlog:cds*=off`) because there is nothing a user
 * could do about them at run time.
 */
internal class StartupArchive private constructor(
    /** Where the archive is, or goes once trained. */
    val file: Path,
    private val command: List<String>,
    private val directory: Path?,
) {
    /** A training for this archive that exited cleanly but wrote nothing leaves this behind: later runs do not try again. */
    private val failedMarker: Path = file.resolveSibling(file.fileName.toString().removeSuffix(".jsa") + ".failed")

    /** The training's output, moved to [file] when it is complete. */
    private val trainingFile: Path = file.resolveSibling("${file.fileName}.${ProcessHandle.current().pid()}.tmp")

    /** Whether workers start from the archive now: it is there (looked at for every worker, as it may have been deleted). */
    val ready: Boolean get() = Files.isRegularFile(file)

    /** Whether a training run is worth making: no archive yet, and no earlier clean training for it wrote nothing. */
    val needsTraining: Boolean get() = !ready && !Files.exists(failedMarker)

    /** [command] (a java launcher's) with the flags that map the archive, once it exists. */
    fun workerCommand(command: List<String>): List<String> =
        if (ready) withJvmOptions(command, "-XX:SharedArchiveFile=$file", QUIET) else command

    /** [command] with the flags that write the archive when the JVM exits. */
    fun trainerCommand(command: List<String>): List<String> {
        Files.deleteIfExists(trainingFile)
        return withJvmOptions(command, "-XX:ArchiveClassesAtExit=$trainingFile", QUIET)
    }

    /** The same archive if the jars are unchanged, or the one for what is on disk now (not trained yet). */
    fun refreshed(): StartupArchive? {
        val now = of(command, directory, quiet = true) ?: return null
        return if (now.file == file) this else now
    }

    /**
     * The training run exited with [exitCode] after it reached `forkProcesses`: moves its
     * archive into place, or, when it exited cleanly but wrote none, remembers that this build
     * cannot have one (one log line either way). A training that did not end cleanly (killed,
     * or failing in the application's code) is tried again by the next run.
     */
    fun trained(exitCode: Int?, tookMillis: Long): Boolean {
        try {
            if (exitCode == 0 && Files.isRegularFile(trainingFile) && Files.size(trainingFile) > 0) {
                Files.move(trainingFile, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING)
                logger.info { "start-up archive $file made in $tookMillis ms (${Files.size(file) / 1024} KiB): workers started from now on map it" }
                pruneOthers()
                return true
            }
            Files.deleteIfExists(trainingFile)
            if (exitCode == 0) {
                Files.write(failedMarker, "a training run exited with status 0 and wrote no archive\n".toByteArray())
                logger.warn { "start-up archive: the training JVM wrote no archive; workers start without one (delete $failedMarker to try again)" }
            } else {
                logger.warn { "start-up archive: the training JVM ended with ${exitCode?.let { "status $it" } ?: "a signal"}; workers start without an archive" }
            }
        } catch (e: IOException) {
            logger.warn { "start-up archive: cannot put the trained archive in place ($e); workers start without one" }
        }
        return false
    }

    /** A training run that was stopped wrote an archive as it exited, of less than `forkProcesses`: never used. */
    fun abandonTraining() {
        try {
            Files.deleteIfExists(trainingFile)
        } catch (e: IOException) {
            logger.debug { "cannot delete $trainingFile: $e" }
        }
    }

    /** Archives of earlier builds of this instance, and trainings of supervisors that died: never mapped again. */
    private fun pruneOthers() {
        val name = file.fileName.toString()
        val instance = name.substring(0, name.lastIndexOf('-') + 1)
        val mine = Regex(Regex.escape(instance) + "[0-9a-f]{16}\\.(jsa|failed)")
        val training = Regex(".*\\.jsa\\.(\\d+)\\.tmp")
        try {
            Files.newDirectoryStream(file.parent).use { entries ->
                for (entry in entries) {
                    val other = entry.fileName.toString()
                    val dead = training.matchEntire(other)?.let { ProcessHandle.of(it.groupValues[1].toLong()).isEmpty } == true
                    if ((other != name && mine.matches(other)) || dead) Files.deleteIfExists(entry)
                }
            }
        } catch (e: IOException) {
            logger.debug { "cannot prune ${file.parent}: $e" }
        }
    }

    companion object {
        /** Turns off the JVM's CDS warnings on a worker's command line: a bad archive is not the worker's failure. */
        private const val QUIET = "-Xlog:cds*=off"

        /** Where the java launcher finds JVM options besides the command line. */
        private val OPTION_VARIABLES = listOf("JDK_JAVA_OPTIONS", "JAVA_TOOL_OPTIONS")

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

        /** Options that read more options from a file, which prefork does not parse. */
        private val OPTION_FILES = listOf("@", "-XX:Flags=", "-XX:VMOptionsFile=")

        /**
         * The archive for workers started with [command] (this JVM's own command line, re-executed),
         * kept in [directory] (the default when null); null, with one log line saying why (unless
         * [quiet]), when there can be none.
         */
        fun of(command: List<String>, directory: Path?, quiet: Boolean = false): StartupArchive? {
            val classPath = classPath() // each jar's manifest read once
            val why = unsupported(command, classPath)
            if (why != null) {
                if (!quiet) logger.info { "start-up archive: off, $why" }
                return null
            }
            val dir = try {
                usableDirectory(directory ?: defaultDirectory())
            } catch (e: IOException) {
                if (!quiet) logger.warn { "start-up archive: off, ${e.message}" }
                return null
            }
            val content = try {
                contentDigest(classPath)
            } catch (e: IOException) {
                if (!quiet) logger.warn { "start-up archive: off, cannot read the class path's jars ($e)" }
                return null
            }
            val name = applicationName(command).replace(Regex("[^A-Za-z0-9._]"), "_")
            return StartupArchive(dir.resolve("$name-${instanceDigest(command)}-$content.jsa"), command, directory)
        }

        /** Why workers of [command] cannot have an archive, or null when they can. */
        private fun unsupported(command: List<String>, classPath: List<String>): String? {
            if (!WorkerCommand.isJavaLauncher(command[0])) return "the workers' launcher is not java (${command[0]})"
            val options = WorkerCommand.jvmOptions(command) + OPTION_VARIABLES.flatMap { System.getenv(it)?.split(' ').orEmpty() }
            options.firstOrNull { option -> OWN_SHARING.any { option.startsWith(it) } }?.let {
                return "the command line sets class-data sharing itself ($it)"
            }
            options.firstOrNull { option -> OPTION_FILES.any { option.startsWith(it) } }?.let {
                return "JVM options come from a file ($it) that prefork does not read"
            }
            val notJars = classPath.filter { !Files.isRegularFile(Path.of(it)) }
            if (notJars.isNotEmpty()) {
                return "the class path holds what is not a jar (${notJars.joinToString()}); the JVM archives classes from jars only"
            }
            return null
        }

        /** `<java.io.tmpdir>/prefork-<uid>`: private to this user, like every directory an archive is read from. */
        private fun defaultDirectory(): Path = Path.of(System.getProperty("java.io.tmpdir"), "prefork-$effectiveUid")

        /** The effective uid, from `/proc/self/status` (the owner of `/proc/self` is root in a process that is not dumpable). */
        private val effectiveUid: Int by lazy {
            val line = Files.readAllLines(Path.of("/proc/self/status")).first { it.startsWith("Uid:") }
            line.substringAfter(':').trim().split(Regex("\\s+"))[1].toInt()
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
            val self = effectiveUid
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

        /** What the archive's classes come from: the JDK, and each jar's entries (name, size, CRC, from its central directory). */
        private fun contentDigest(classPath: List<String>): String = digest {
            add(System.getProperty("java.home"))
            add(System.getProperty("java.vm.version"))
            for (entry in classPath) {
                add(File(entry).absolutePath)
                ZipFile(entry).use { zip ->
                    for (zipEntry in zip.entries()) add("${zipEntry.name} ${zipEntry.size} ${zipEntry.crc}")
                }
            }
        }

        /** What makes two runs one application configured one way: its main jar or class, its directory, its JVM options. */
        private fun instanceDigest(command: List<String>): String = digest {
            val options = WorkerCommand.jvmOptions(command)
            add(command.getOrNull(1 + options.size + (if (command.getOrNull(1 + options.size) == "-jar") 1 else 0))?.let { File(it).absolutePath } ?: "")
            add(System.getProperty("user.dir"))
            options.forEach(::add)
            OPTION_VARIABLES.forEach { add("$it=${System.getenv(it).orEmpty()}") }
        }.take(8)

        /** The first 16 hex digits of the SHA-256 of what [fill] adds, one string at a time. */
        private fun digest(fill: Digest.() -> Unit): String {
            val digest = Digest()
            digest.fill()
            return digest.sha.digest().take(8).joinToString("") { "%02x".format(it) }
        }

        private class Digest {
            val sha: MessageDigest = MessageDigest.getInstance("SHA-256")
            fun add(text: String) = sha.update((text + "\u0000").toByteArray())
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
