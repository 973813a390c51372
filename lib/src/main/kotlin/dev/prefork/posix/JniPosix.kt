package dev.prefork.posix

import java.io.File
import java.io.FileOutputStream
import java.io.IOException
import java.io.InputStream
import java.net.URISyntaxException
import java.net.URL
import java.util.zip.ZipFile

/**
 * [Posix] through prefork's own JNI library (`src/main/c/prefork.c`), on every JDK: the binding
 * a JVM tries first, because it costs a cold JVM the least. Loading it is a file written and a
 * `dlopen`, and every native method is registered at once by name and signature; the JDK's
 * foreign function API spends about 90 ms of a cold JVM on its first stubs, and jffi about
 * 50 ms on unpacking and loading itself (measured on JDK 25 and 17). A JNI call costs what a
 * jffi call does, and on JDK 22+ what an FFM call does, to within a few nanoseconds.
 *
 * The library is built for Linux on the build machine's architecture and travels in the jar
 * under `native/linux-<os.arch>/`. It is copied to `java.io.tmpdir` under a fresh name
 * (created exclusively), loaded, and deleted at once: the mapping
 * stays, nothing is left behind. `-Dprefork.native.library=<path>` loads a copy from that
 * path instead, for a `java.io.tmpdir` on a file system mounted `noexec`.
 *
 * Loading is "native access" on JDK 22+, as FFM's calls are: `--enable-native-access=ALL-UNNAMED`
 * (or `Enable-Native-Access: ALL-UNNAMED` in an executable jar's manifest) keeps JDK 24+ from
 * warning about it.
 */
@Suppress("FunctionName", "ktlint:standard:function-naming")
internal class JniPosix private constructor() : Posix {
    override val name: String get() = "jni"

    override external fun errno(): Int
    override external fun allocate(bytes: Long): Long
    override external fun free(address: Long)
    override external fun putShort(address: Long, value: Short)
    override external fun putInt(address: Long, value: Int)
    override external fun putLong(address: Long, value: Long)
    override external fun getInt(address: Long): Int
    override external fun getLong(address: Long): Long
    override external fun putBytes(address: Long, bytes: ByteArray, offset: Int, length: Int)

    override external fun posix_spawnp(pid: Long, file: Long, fileActions: Long, attr: Long, argv: Long, envp: Long): Int
    override external fun posix_spawn_file_actions_init(fileActions: Long): Int
    override external fun posix_spawn_file_actions_destroy(fileActions: Long): Int
    override external fun posix_spawn_file_actions_adddup2(fileActions: Long, fd: Int, newFd: Int): Int
    override external fun posix_spawn_file_actions_addopen(fileActions: Long, fd: Int, path: Long, flags: Int, mode: Int): Int
    override external fun posix_spawn_file_actions_addclose(fileActions: Long, fd: Int): Int
    override external fun posix_spawn_file_actions_addclosefrom_np(fileActions: Long, from: Int): Int
    override external fun posix_spawn_file_actions_addchdir_np(fileActions: Long, path: Long): Int
    override external fun posix_spawnattr_init(attr: Long): Int
    override external fun posix_spawnattr_destroy(attr: Long): Int
    override external fun posix_spawnattr_setflags(attr: Long, flags: Short): Int
    override external fun posix_spawnattr_setpgroup(attr: Long, processGroup: Int): Int
    override external fun posix_spawnattr_setsigmask(attr: Long, set: Long): Int
    override external fun posix_spawnattr_setsigdefault(attr: Long, set: Long): Int
    override external fun sigemptyset(set: Long): Int
    override external fun sigfillset(set: Long): Int

    override external fun pipe2(fds: Long, flags: Int): Int
    override external fun open(path: Long, flags: Int, mode: Int): Int
    override external fun close(fd: Int): Int
    override external fun fcntl(fd: Int, cmd: Int, arg: Int): Int
    override external fun ioctlInt(fd: Int, request: Long, value: Long): Int
    override external fun write(fd: Int, buffer: Long, count: Long): Long
    override external fun read(fd: Int, buffer: Long, count: Long): Long
    override external fun readArray(fd: Int, bytes: ByteArray, offset: Int, length: Int): Long
    override external fun writeArray(fd: Int, bytes: ByteArray, offset: Int, length: Int): Long

    override external fun kill(pid: Int, signal: Int): Int
    override external fun wait4(pid: Int, status: Long, options: Int, rusage: Long): Int
    override external fun syscall(number: Long, arg1: Long, arg2: Long): Long
    override external fun poll(fds: Long, count: Long, timeoutMillis: Int): Int

    override external fun epoll_create1(flags: Int): Int
    override external fun epoll_ctl(epfd: Int, op: Int, fd: Int, event: Long): Int
    override external fun epoll_wait(epfd: Int, events: Long, maxEvents: Int, timeoutMillis: Int): Int
    override external fun eventfd(initialValue: Int, flags: Int): Int

    override external fun socket(domain: Int, type: Int, protocol: Int): Int
    override external fun sendto(fd: Int, buffer: Long, length: Long, flags: Int, address: Long, addressLength: Int): Long

    companion object {
        /** The library's place in the jar, for this JVM's architecture. */
        private val PATH: String = "dev/prefork/posix/native/linux-" + System.getProperty("os.arch") + "/libprefork.so"

        /**
         * The library's bytes, or null where this jar has none. Read from the jar (or classes
         * directory) this class came from when that is a file: through the class loader, the
         * resource's URL costs a cold JDK 25 about 10 ms (its URL handler is found by reflection,
         * whose method handles the JDK generates). Any other class loader is asked for it.
         */
        private fun libraryBytes(): ByteArray? {
            val location = JniPosix::class.java.protectionDomain?.codeSource?.location
            val origin = if (location?.protocol == "file") fileOf(location) else null
            if (origin != null) {
                if (origin.isDirectory) return File(origin, PATH).takeIf { it.isFile }?.readBytes()
                // The class loader has this jar open already: ZipFile shares its parsed directory.
                if (origin.isFile) return ZipFile(origin).use { jar -> jar.getEntry(PATH)?.let { jar.getInputStream(it).use(InputStream::readAllBytes) } }
            }
            return JniPosix::class.java.classLoader?.getResourceAsStream(PATH)?.use(InputStream::readAllBytes)
        }

        private fun fileOf(url: URL): File? = try {
            File(url.toURI())
        } catch (e: URISyntaxException) {
            null
        } catch (e: IllegalArgumentException) {
            null
        }

        /**
         * Loads the library (registering every native method of this class) and returns the
         * binding. Throws [UnsatisfiedLinkError] naming the file and the reason when the library
         * cannot be had or loaded; nothing is left in `java.io.tmpdir` either way.
         */
        fun load(): JniPosix {
            val given = System.getProperty("prefork.native.library", "")
            if (given.isNotEmpty()) {
                System.load(File(given).absolutePath)
                return JniPosix()
            }
            val library = libraryBytes()
                ?: throw UnsatisfiedLinkError("this prefork jar has no JNI library for linux-" + System.getProperty("os.arch") + " (" + PATH + ")")
            val file = extract(library)
            try {
                System.load(file.path)
            } finally {
                file.delete()
            }
            return JniPosix()
        }

        /** A copy of [library] under a name no other file had, in `java.io.tmpdir`. */
        private fun extract(library: ByteArray): File {
            val directory = File(System.getProperty("java.io.tmpdir"))
            // A name from the clock, made unique by createNewFile (O_CREAT|O_EXCL: never an existing file or a
            // link), and java.io rather than NIO channels: a cold JVM loads neither SecureRandom, which
            // Files.createTempFile would set up, nor some 25 classes of java.nio.channels that JDK 17's CDS
            // archive lacks. In a sticky directory (/tmp), no other user can replace or remove the file.
            var attempt = 0
            while (true) {
                val file = File(directory, "libprefork-" + java.lang.Long.toHexString(System.nanoTime()) + ".so")
                val created = try {
                    file.createNewFile()
                } catch (e: IOException) {
                    throw UnsatisfiedLinkError("cannot write prefork's JNI library to $directory: $e")
                }
                if (!created) {
                    if (++attempt == 100) throw UnsatisfiedLinkError("cannot write prefork's JNI library to $directory: 100 names taken")
                    continue
                }
                try {
                    FileOutputStream(file).use { it.write(library) }
                } catch (e: IOException) {
                    file.delete()
                    throw UnsatisfiedLinkError("cannot write prefork's JNI library to $file: $e")
                }
                return file
            }
        }
    }
}
