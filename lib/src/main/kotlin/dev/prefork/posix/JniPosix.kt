package dev.prefork.posix

import java.io.File
import java.io.FileInputStream
import java.io.FileOutputStream
import java.io.IOException
import java.io.InputStream
import java.net.URISyntaxException
import java.net.URL
import java.nio.file.FileAlreadyExistsException
import java.nio.file.Files
import java.nio.file.attribute.PosixFilePermission.OWNER_EXECUTE
import java.nio.file.attribute.PosixFilePermission.OWNER_READ
import java.nio.file.attribute.PosixFilePermission.OWNER_WRITE
import java.nio.file.attribute.PosixFilePermissions
import java.util.EnumSet
import java.util.Objects
import java.util.zip.ZipFile

/**
 * [Posix] through prefork's own JNI library (`src/main/c/prefork.c`), on every JDK: the binding
 * a JVM tries first, because it costs a cold JVM the least. Loading it is a file written and a
 * `dlopen`, and every native method is registered at once by name and signature; the JDK's
 * foreign function API spends about 90 ms of a cold JVM on its first stubs, and jffi some
 * 40 ms more than this on unpacking and loading itself (measured on JDK 25 and 17).
 *
 * The jar carries the library built on the build machine, for its architecture, under
 * `native/linux-<os.arch>/`. It is copied into a fresh directory in `java.io.tmpdir` that only
 * this user can enter, loaded, and deleted at once with its directory (the mapping stays).
 * `-Dprefork.native.library=<path>` loads a copy from that path instead, for a
 * `java.io.tmpdir` on a file system mounted `noexec`.
 *
 * Loading is "native access" on JDK 22+, as FFM's calls are: `--enable-native-access=ALL-UNNAMED`
 * (or `Enable-Native-Access: ALL-UNNAMED` in an executable jar's manifest) keeps JDK 24+ from
 * warning about it.
 */
@Suppress("FunctionName", "ktlint:standard:function-naming")
internal class JniPosix private constructor() : Posix {
    override val name: String get() = "jni"

    override external fun errno(): Int

    /** How many native methods the library registered for this class (for the test that every one has its C function). */
    external fun registeredNatives(): Int

    // As the other bindings do, failures the C side would let through become exceptions here: native memory
    // that is not there (calloc's NULL, which the callers would write to), and a slice outside its array.
    override fun allocate(bytes: Long): Long {
        require(bytes >= 0) { "cannot allocate $bytes bytes" }
        val address = calloc(bytes)
        if (address == 0L) throw OutOfMemoryError("cannot allocate $bytes bytes of native memory")
        return address
    }
    private external fun calloc(bytes: Long): Long

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
    override fun readArray(fd: Int, bytes: ByteArray, offset: Int, length: Int): Long {
        Objects.checkFromIndexSize(offset, length, bytes.size)
        return readInto(fd, bytes, offset, length)
    }
    override fun writeArray(fd: Int, bytes: ByteArray, offset: Int, length: Int): Long {
        Objects.checkFromIndexSize(offset, length, bytes.size)
        return writeFrom(fd, bytes, offset, length)
    }
    private external fun readInto(fd: Int, bytes: ByteArray, offset: Int, length: Int): Long
    private external fun writeFrom(fd: Int, bytes: ByteArray, offset: Int, length: Int): Long

    override external fun kill(pid: Int, signal: Int): Int
    override external fun wait4(pid: Int, status: Long, options: Int, rusage: Long): Int
    override external fun syscall(number: Long, arg1: Long, arg2: Long): Long
    override external fun poll(fds: Long, count: Long, timeoutMillis: Int): Int
    override external fun sched_getaffinity(tid: Int, size: Long, mask: Long): Int
    override external fun sched_setaffinity(tid: Int, size: Long, mask: Long): Int

    override external fun epoll_create1(flags: Int): Int
    override external fun epoll_ctl(epfd: Int, op: Int, fd: Int, event: Long): Int
    override external fun epoll_wait(epfd: Int, events: Long, maxEvents: Int, timeoutMillis: Int): Int
    override external fun eventfd(initialValue: Int, flags: Int): Int

    override external fun socket(domain: Int, type: Int, protocol: Int): Int
    override external fun sendto(fd: Int, buffer: Long, length: Long, flags: Int, address: Long, addressLength: Int): Long

    /** This jar has no library for the platform: a build made elsewhere, not a fault. */
    class Absent(message: String) : UnsatisfiedLinkError(message)

    companion object {
        /** The library's place in the jar, for this JVM's architecture. */
        private val PATH: String = "dev/prefork/posix/native/linux-" + System.getProperty("os.arch") + "/libprefork.so"

        /**
         * Loads the library (registering every native method of this class) and returns the
         * binding. Throws [Absent] where the jar has no library for this platform, and
         * [UnsatisfiedLinkError] naming the jar, directory or file where it cannot be read, written
         * to `java.io.tmpdir`, or loaded. The copy is deleted on every path, unless
         * the JVM dies in the millisecond between writing and deleting it.
         */
        fun load(): JniPosix {
            val given = System.getProperty("prefork.native.library", "")
            if (given.isNotEmpty()) {
                System.load(File(given).absolutePath)
                return JniPosix()
            }
            val library = libraryBytes()
                ?: throw Absent("this prefork jar has no JNI library for linux-" + System.getProperty("os.arch") + " (" + PATH + ")")
            val tmp = File(System.getProperty("java.io.tmpdir")).absoluteFile // System.load takes no relative path
            val directory = try {
                privateDirectory(tmp)
            } catch (e: IOException) {
                throw failed("cannot write prefork's JNI library to $tmp", e)
            }
            try {
                val file = File(directory, "libprefork.so")
                try {
                    try {
                        FileOutputStream(file).use { it.write(library) }
                    } catch (e: IOException) {
                        throw failed("cannot write prefork's JNI library to $directory", e)
                    }
                    System.load(file.path)
                } finally {
                    file.delete()
                }
            } finally {
                directory.delete()
            }
            return JniPosix()
        }

        /**
         * The library's bytes, or null where this jar has none. Read from the jar or classes
         * directory this class came from when it has them: through the class loader, the
         * resource's URL costs a cold JDK 25 about 10 ms (its URL handler is found by reflection,
         * whose method handles the JDK generates). The class loader is asked otherwise (nested
         * jars, resources kept apart from classes).
         */
        private fun libraryBytes(): ByteArray? {
            val location = JniPosix::class.java.protectionDomain?.codeSource?.location
            val origin = if (location?.protocol == "file") fileOf(location) else null
            val found = try {
                when {
                    origin == null -> null
                    origin.isDirectory -> File(origin, PATH).takeIf { it.isFile }?.let { file -> FileInputStream(file).use(InputStream::readAllBytes) }
                    // The class loader has this jar open already: ZipFile shares its parsed directory.
                    origin.isFile -> ZipFile(origin).use { jar -> jar.getEntry(PATH)?.let { jar.getInputStream(it).use(InputStream::readAllBytes) } }
                    else -> null
                }
            } catch (e: IOException) {
                throw failed("cannot read prefork's JNI library from $origin", e)
            }
            return found ?: try {
                JniPosix::class.java.classLoader?.getResourceAsStream(PATH)?.use(InputStream::readAllBytes)
            } catch (e: IOException) {
                throw failed("cannot read prefork's JNI library $PATH from the class loader", e)
            }
        }

        private fun fileOf(url: URL): File? = try {
            File(url.toURI())
        } catch (e: URISyntaxException) {
            null
        } catch (e: IllegalArgumentException) {
            null
        }

        /** An [UnsatisfiedLinkError], the one error a binding's load throws, saying what failed and why. */
        private fun failed(what: String, e: IOException): UnsatisfiedLinkError =
            UnsatisfiedLinkError("$what: $e").apply { initCause(e) }

        /**
         * A new directory in [tmp] that only this user can enter: mkdir creates it with that mode,
         * and fails where the name exists (a link included), so no other user can have put
         * anything in it or can change it. Named from the clock: SecureRandom, which
         * Files.createTempDirectory would set up, costs a cold JVM more than all the rest.
         */
        private fun privateDirectory(tmp: File): File {
            val ownerOnly = PosixFilePermissions.asFileAttribute(EnumSet.of(OWNER_READ, OWNER_WRITE, OWNER_EXECUTE))
            var attempt = 0
            while (true) {
                val directory = File(tmp, "prefork-jni-" + java.lang.Long.toHexString(System.nanoTime()))
                try {
                    Files.createDirectory(directory.toPath(), ownerOnly)
                    return directory
                } catch (e: FileAlreadyExistsException) {
                    if (++attempt == 100) throw e
                }
            }
        }
    }
}
