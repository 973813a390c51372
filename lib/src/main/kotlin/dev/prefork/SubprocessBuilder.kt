package dev.prefork

import dev.prefork.io.PipeSink
import dev.prefork.io.PipeSource
import dev.prefork.io.Terminal
import dev.prefork.posix.Fds
import dev.prefork.posix.Linux
import dev.prefork.posix.Pty
import dev.prefork.posix.Spawn
import dev.prefork.supervisor.SocketActivation
import dev.prefork.posix.Wait
import dev.prefork.reaper.Background
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.launch
import kotlinx.coroutines.supervisorScope
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.withContext
import java.io.IOException
import java.nio.file.Files
import java.nio.file.Path
import java.time.Duration

/** Every environment variable prefork sets for a worker starts with this. */
internal const val WORKER_VARIABLE_PREFIX: String = "PREFORK_"

/**
 * Configures and starts a [Subprocess], or [run]s one to its end and captures its output.
 * Each stream defaults to [Redirect.INHERIT] ([run]: stdout and stderr to a captured pipe);
 * the environment defaults to this process's; the working directory to this process's.
 */
public class SubprocessBuilder internal constructor(private val command: List<String>) {
    // Null: not set, so [start] inherits and [run] captures.
    private var stdin: Redirect? = null
    private var stdout: Redirect? = null
    private var stderr: Redirect? = null
    private var cwd: Path? = null

    /** Null while the inherited environment is untouched: the spawn then passes one encoded block, made once per JVM. */
    private var env: MutableMap<String, String>? = null
    private var input: ByteArray? = null
    private var timeout: Duration? = null
    private var check = false
    private var maxOutput = MAX_ARRAY
    private var terminateTimeout: Duration = Duration.ofSeconds(5)
    private var newProcessGroup = false
    private val extraFds = mutableListOf<ExtraFd>()
    private var stdinFd: Int? = null

    /** pty()'s window size; 0 columns: no terminal. */
    private var ptyColumns = 0
    private var ptyRows = 0
    private var echo = true

    /** A child fd numbered 3 and up, in the order added: a parent fd to pass, or a pipe the parent reads. */
    internal sealed interface ExtraFd {
        class Pass(val parentFd: Int) : ExtraFd
        object ReadPipe : ExtraFd
    }

    /** Passes [parentFd] to the child as its next fd from 3 up; the caller keeps ownership of [parentFd]. */
    internal fun passFd(parentFd: Int): SubprocessBuilder = apply { extraFds += ExtraFd.Pass(parentFd) }

    /** Makes [parentFd] the child's fd 0 instead of [stdin]'s redirect; the caller keeps ownership of [parentFd]. */
    internal fun stdinFrom(parentFd: Int): SubprocessBuilder = apply { stdinFd = parentFd }

    /** Gives the child the write end of a pipe as its next fd from 3 up; the parent reads it via [Subprocess.extraReaders]. */
    internal fun readPipe(): SubprocessBuilder = apply { extraFds += ExtraFd.ReadPipe }

    init {
        require(command.isNotEmpty()) { "command is empty" }
        require(command[0].isNotEmpty()) { "program name is empty: $command" }
        for (argument in command) require(!hasNul(argument)) { "NUL character in command: $command" }
    }

    /**
     * Where the child's stdin comes from: [Redirect.INHERIT] (the default), [Redirect.STREAM]
     * (a [PipeWriter]), [Redirect.DEVNULL] or [Redirect.file]. With [run], [input] is the other way.
     *
     * @throws IllegalArgumentException for [Redirect.STDOUT] or [Redirect.toLogger], which are output redirects.
     */
    public fun stdin(redirect: Redirect): SubprocessBuilder = apply {
        require(redirect != Redirect.STDOUT) { "Redirect.STDOUT is for stderr only" }
        require(redirect !is Redirect.ToLogger) { "Redirect.toLogger is for stdout and stderr only" }
        stdin = redirect
    }

    /**
     * Where the child's stdout goes: [Redirect.STREAM] (a [PipeReader]), [Redirect.INHERIT],
     * [Redirect.DEVNULL], [Redirect.file], [Redirect.appendTo] or [Redirect.toLogger]. Unset, it
     * is inherited by [start] and captured by [run].
     *
     * @throws IllegalArgumentException for [Redirect.STDOUT], which is for stderr.
     */
    public fun stdout(redirect: Redirect): SubprocessBuilder = apply {
        require(redirect != Redirect.STDOUT) { "Redirect.STDOUT is for stderr only" }
        stdout = redirect
    }

    /**
     * Where the child's stderr goes: as for [stdout], and also [Redirect.STDOUT], which merges it
     * into stdout (with [run], the captured stdout then holds both, and `stderr` is null).
     */
    public fun stderr(redirect: Redirect): SubprocessBuilder = apply { stderr = redirect }

    /** The child's working directory. */
    public fun cwd(directory: Path): SubprocessBuilder = apply { cwd = directory }

    /**
     * The child's whole environment, replacing this process's (as `Popen(env=...)` does). A copy
     * is taken: later edits go through [environment], [env] (name, value) and [removeEnv].
     */
    public fun env(environment: Map<String, String>): SubprocessBuilder = apply {
        environment.forEach { (name, value) -> checkVariable(name, value) }
        env = LinkedHashMap(environment)
    }

    /**
     * The child's environment as a live, mutable map, as `ProcessBuilder.environment()`: this
     * process's environment (without prefork's own worker and socket-activation variables) or
     * the map given to [env], to add to, override and remove from. Entries are checked when the
     * child starts (a name that is empty or holds `=` or NUL, or a value that holds NUL, is an
     * [IllegalArgumentException] naming it). Until this is called, no copy is made.
     */
    public fun environment(): MutableMap<String, String> = env ?: LinkedHashMap(Inherited.variables).also { env = it }

    /** Sets (adds or overrides) one variable in [environment]. */
    public fun env(name: String, value: String): SubprocessBuilder = apply {
        checkVariable(name, value)
        environment()[name] = value
    }

    /** Removes one variable from [environment], if it is there. */
    public fun removeEnv(name: String): SubprocessBuilder = apply {
        checkVariable(name, "")
        environment().remove(name)
    }

    /**
     * For [run]: [bytes] are written to the child's stdin, a pipe then (a [stdin] redirect other
     * than [Redirect.STREAM] is refused), while its output is read; then stdin is closed. A child
     * that exits without reading them all is no error. The array is not copied: do not change it
     * while a run uses it.
     *
     * With [pty], the bytes are typed at the terminal (and echoed), and closing stdin is no end
     * of input there: end them with Ctrl-D (`\u0004`) after a newline for a child that reads to
     * the end.
     */
    public fun input(bytes: ByteArray): SubprocessBuilder = apply { input = bytes }

    /**
     * For [run]: past [timeout] the child is terminated (SIGTERM, SIGKILL after
     * [terminateTimeout]) and reaped, and the run throws [SubprocessTimeoutException] with the
     * output captured until then. Default: none.
     */
    public fun timeout(timeout: Duration): SubprocessBuilder = apply {
        require(!timeout.isNegative) { "timeout < 0: $timeout" }
        this.timeout = timeout
    }

    /** For [run]: a non-zero return code throws [CalledProcessError] with the captured output (Python's `check=True`). Default false. */
    public fun check(check: Boolean): SubprocessBuilder = apply { this.check = check }

    /**
     * For [run]: the most bytes captured from stdout, and from stderr, each. A child that writes
     * more is terminated and reaped, and the run throws [SubprocessOutputLimitException].
     * Default: the largest array the JVM makes.
     */
    public fun maxOutput(bytes: Int): SubprocessBuilder = apply {
        require(bytes in 0..MAX_ARRAY) { "maxOutput not in 0..$MAX_ARRAY: $bytes" }
        maxOutput = bytes
    }

    /**
     * Starts the child as the leader of a new process group, and makes [Subprocess.signal],
     * [Subprocess.terminate], [Subprocess.kill], cancellation and close signal the whole group
     * while the child runs: a shell's own children then stop with it. The group also no longer
     * receives the terminal's Ctrl-C meant for this process.
     */
    public fun newProcessGroup(): SubprocessBuilder = apply { newProcessGroup = true }

    /**
     * Runs the child on a new pseudo-terminal of [columns] by [rows], as Python's `pty` and
     * pexpect do: its stdin and stdout are the terminal (and its stderr, unless [stderr] sends
     * it elsewhere: [Redirect.STREAM] makes it a pipe of its own), and the terminal is its
     * controlling terminal, so it sees `isatty` true, line-buffers its output, colours it, and
     * prompts as for a person. [Subprocess.stdin] writes to the terminal and [Subprocess.stdout]
     * reads it (both on prefork's reactor, as pipes are); [Subprocess.resize] changes its size.
     *
     * The child leads a session of its own (so also a process group: [newProcessGroup] then only
     * makes signals go to the whole group). What the terminal does to the bytes is what a
     * terminal does: input is echoed to the output (see [echo]) and edited by line (Ctrl-C is
     * SIGINT, Ctrl-D at the start of a line is end of input for the child: closing stdin is not),
     * and output lines end in `\r\n` ([PipeReader.lines] strips that). `TERM` is inherited, as
     * any variable: set it with [env] for a program that wants one. stdout ends when no process
     * holds the terminal open any more: the child and whatever it passed it on to.
     *
     * [stdin] and [stdout] redirects cannot be combined with it: [start] and [run] refuse them
     * with an [IllegalArgumentException] naming the redirect and the command.
     */
    public fun pty(columns: Int, rows: Int): SubprocessBuilder = apply {
        require(columns in 1..Pty.MAX_SIZE) { "pty columns not in 1..${Pty.MAX_SIZE}: $columns" }
        require(rows in 1..Pty.MAX_SIZE) { "pty rows not in 1..${Pty.MAX_SIZE}: $rows" }
        ptyColumns = columns
        ptyRows = rows
    }

    /** [pty] of 80 columns by 24 rows, a terminal's classic size. */
    public fun pty(): SubprocessBuilder = pty(DEFAULT_COLUMNS, DEFAULT_ROWS)

    /**
     * With [pty]: whether the terminal echoes the child's input to its output, as it does by
     * default (a person at a terminal sees what they type). `echo(false)` clears the terminal's
     * ECHO flag before the child starts; the child may set it again (a shell's line editor, or
     * `getpass` turning it off and back on, does). Without [pty], [start] refuses `echo(false)`.
     */
    public fun echo(echo: Boolean): SubprocessBuilder = apply { this.echo = echo }

    /** How long a cancelled or closed child gets between SIGTERM and SIGKILL. Default 5 s. */
    public fun terminateTimeout(timeout: Duration): SubprocessBuilder = apply {
        require(!timeout.isNegative) { "terminateTimeout < 0: $timeout" }
        terminateTimeout = timeout
    }

    /**
     * Starts the child, owned by the calling coroutine's scope: the scope waits for the child
     * to exit, and cancelling the scope terminates the child (see [Subprocess]).
     *
     * The spawn runs on [Dispatchers.IO] (the first one in a JVM also loads the native
     * library, about a second), never blocking the caller's thread. It is not interrupted by
     * cancellation; a child started by a cancelled caller is terminated at once.
     */
    @JvmSynthetic
    @Throws(IOException::class)
    public suspend fun start(): Subprocess {
        val caller = currentCoroutineContext()
        // Attached inside the non-cancellable block: if the caller is cancelled meanwhile, the
        // result is dropped, but the owner already runs in the caller's scope and terminates it.
        return withContext(NonCancellable + Dispatchers.IO) { startDetached().also { it.attachTo(caller) } }
    }

    /**
     * Starts the child, owned by no scope. Throws [IOException] naming the program and errno
     * when it cannot be started (missing executable, bad directory, unreadable file), after
     * releasing every fd it had opened.
     */
    @JvmName("start")
    @Throws(IOException::class)
    public fun startDetached(): Subprocess =
        spawn(stdin ?: Redirect.INHERIT, stdout ?: Redirect.INHERIT, stderr ?: if (ptyColumns > 0) Redirect.STDOUT else Redirect.INHERIT)

    /**
     * Runs the child to its end and returns its return code, exit status and output, as
     * Python's `subprocess.run(capture_output=True)` does, without a deadlock whatever the sizes:
     * [input] is written while stdout and stderr are read.
     *
     * stdout and stderr are captured unless redirected: a stream given any redirect other than
     * [Redirect.STREAM] goes there, and comes back null ([Redirect.STDOUT] merges stderr into
     * the captured stdout). stdin is inherited unless [input] is given. With [pty], stdout is
     * what the terminal shows, stderr included unless redirected.
     *
     * The child is reaped before this returns or throws: on [timeout] ([SubprocessTimeoutException]),
     * on [maxOutput] ([SubprocessOutputLimitException]), or when the caller is cancelled, it
     * is first terminated (SIGTERM, SIGKILL after [terminateTimeout]). With [check], a non-zero
     * return code throws [CalledProcessError]. A child that cannot start is the [IOException]
     * of [start].
     */
    @JvmSynthetic
    @Throws(IOException::class)
    public suspend fun run(): CompletedProcess {
        val given = stdin
        require(input == null || given == null || given == Redirect.STREAM) { "input given, but stdin is $given" }
        val stdinRedirect = if (input != null) Redirect.STREAM else given ?: Redirect.INHERIT
        val stdoutRedirect = stdout ?: Redirect.STREAM
        val stderrRedirect = stderr ?: if (ptyColumns > 0) Redirect.STDOUT else Redirect.STREAM
        val completed = Run(command, input, timeout, maxOutput).run { listOf(spawn(stdinRedirect, stdoutRedirect, stderrRedirect)) }[0]
        return if (check) completed.checkReturnCode() else completed
    }

    /** Blocks until the child was run to its end; see the suspending [run]. Interrupting the thread terminates the child. */
    @JvmName("run")
    @Throws(IOException::class, InterruptedException::class)
    public fun runBlocking(): CompletedProcess = kotlinx.coroutines.runBlocking { run() }

    /**
     * Refuses what member [index] of [count] cannot have in a pipeline, before any member starts:
     * a redirect of a side that is a pipe to its neighbour, and the options that only a lone
     * [run] uses (the pipeline has its own).
     */
    internal fun checkPipelineMember(index: Int, count: Int) {
        val member = "pipeline member $index ($command)"
        require(index == 0 || stdin == null) { "stdin of $member is $stdin, but it is the pipe from member ${index - 1}" }
        require(index == count - 1 || stdout == null) { "stdout of $member is $stdout, but it is the pipe to member ${index + 1}" }
        require(input == null) { "input is set on $member: give it to the pipeline" }
        require(timeout == null) { "timeout is set on $member: give it to the pipeline" }
        require(!check) { "check is set on $member: give it to the pipeline" }
        require(maxOutput == MAX_ARRAY) { "maxOutput is set on $member: give it to the pipeline" }
        require(ptyColumns == 0) { "pty() is set on $member: a member's stdin and stdout are the pipeline's" }
    }

    /**
     * Starts this builder as a pipeline member, owned by no scope: fd 0 from [stdinFd] and fd 1
     * to [stdoutFd] where they are not null (pipes the caller keeps and closes), else as the
     * builder says; unset streams are inherited, or with [capture] ([run]'s defaults) stdout and
     * stderr are captured pipes. [stdin] overrides the first member's (`input` given).
     */
    internal fun startInPipeline(stdinFd: Int?, stdoutFd: Int?, capture: Boolean, stdin: Redirect? = this.stdin): Subprocess {
        val unset = if (capture) Redirect.STREAM else Redirect.INHERIT
        return spawn(stdin ?: Redirect.INHERIT, stdout ?: unset, stderr ?: unset, stdinFd, stdoutFd)
    }

    /** The first member's stdin, for the pipeline's `input`. */
    internal val stdinRedirect: Redirect? get() = stdin

    internal val commandLine: List<String> get() = command

    private fun spawn(stdin: Redirect, stdout: Redirect, stderr: Redirect, stdinFd: Int? = this.stdinFd, stdoutFd: Int? = null): Subprocess {
        cwd?.let {
            if (!Files.isDirectory(it)) {
                throw IOException("Cannot run program \"${command[0]}\": directory \"$it\" does not exist or is not a directory")
            }
        }
        val name = if (command.size > 1) "${command[0]} ${command.subList(1, command.size)}" else command[0]
        val onTerminal = ptyColumns > 0
        require(echo || onTerminal) { "echo(false) without pty(): $name" }
        if (onTerminal) {
            require(this.stdin == null && stdinFd == null) { "pty(): stdin is the terminal, not ${this.stdin}: $name" }
            require(this.stdout == null) { "pty(): stdout is the terminal, not ${this.stdout}: $name" }
        }
        // Checked before any pipe is made: environment()'s map may have been edited directly.
        val environment = env?.let(::checkedBlock) ?: Inherited.environment
        val plumbing = Plumbing(name)
        try {
            val fdMap = IntArray(3 + extraFds.size)
            if (onTerminal) {
                fdMap[0] = plumbing.terminal(ptyColumns, ptyRows, echo)
                fdMap[1] = Spawn.TERMINAL
            } else {
                fdMap[0] = stdinFd ?: plumbing.childEnd(0, stdin)
                fdMap[1] = stdoutFd ?: plumbing.childEnd(1, stdout)
            }
            fdMap[2] = plumbing.childEnd(2, stderr)
            for (i in 0 until extraFds.size) {
                fdMap[3 + i] = when (val extra = extraFds[i]) {
                    is ExtraFd.Pass -> extra.parentFd
                    ExtraFd.ReadPipe -> plumbing.childEnd(3 + i, Redirect.STREAM)
                }
            }
            val pid = Spawn.spawn(command, environment, cwd?.toString(), fdMap, newProcessGroup, plumbing.terminalPath)
            val logReaders = plumbing.logReaders(name, pid)
            val process = Subprocess.create(
                command, pid,
                stdin = plumbing.sink?.let { PipeWriter(it.input, (if (onTerminal) "terminal" else "stdin") + " of $name (pid $pid)") },
                stdout = plumbing.sources[1]?.let { PipeReader(it, (if (onTerminal) "terminal" else "stdout") + " of $name (pid $pid)") },
                stderr = plumbing.sources[2]?.let { PipeReader(it, "stderr of $name (pid $pid)") },
                terminateTimeout = terminateTimeout,
                processGroup = newProcessGroup,
                extraReaders = List(plumbing.extraSources.size) { i -> PipeReader(plumbing.extraSources[i], "fd ${3 + i} of $name (pid $pid)") },
                logReaders = logReaders,
                logging = plumbing.logging(logReaders),
                terminal = plumbing.terminal,
            )
            // The watch first: if it fails, the pumps have not started and each fd still has one owner (abandon).
            watch(process, pid)
            plumbing.spawned()
            return process
        } catch (t: Throwable) {
            plumbing.abandon()
            throw t
        }
    }

    /** Registers the exit watch; if even that fails, the child is killed and reaped before the error propagates. */
    private fun watch(process: Subprocess, pid: Int) {
        try {
            process.exitWatch = Subprocess.reactor.watchExit(pid) { process.tryReap() }
        } catch (e: Exception) {
            Wait.kill(pid, Linux.SIGKILL)
            while (!process.tryReap()) Thread.sleep(1)
            throw e
        }
    }

    private companion object {
        val STREAM_NAMES = arrayOf("stdin", "stdout", "stderr")

        fun checkVariable(name: String, value: String) {
            require(name.isNotEmpty()) { "environment variable name is empty" }
            require(name.indexOf('=') < 0) { "'=' in environment variable name: \"$name\"" }
            require(!hasNul(name)) { "NUL character in environment variable name: \"$name\"" }
            require(!hasNul(value)) { "NUL character in the value of environment variable \"$name\"" }
        }

        fun checkedBlock(variables: Map<String, String>): List<String> {
            for (entry in variables.entries) checkVariable(entry.key, entry.value)
            return environmentBlock(variables)
        }

        fun environmentBlock(variables: Map<String, String>): List<String> {
            val block = ArrayList<String>(variables.size)
            for (entry in variables.entries) block.add(entry.key + "=" + entry.value)
            return block
        }

        fun hasNul(text: String): Boolean {
            for (i in 0 until text.length) if (text[i] == '\u0000') return true
            return false
        }
    }

    /**
     * This process's environment (fixed for the JVM's life) without prefork's own worker
     * variables: a worker's children are not workers, and must not mistake themselves for one;
     * nor systemd's socket activation, whose sockets are this process's (as `sd_listen_fds` unsets them).
     * One list, so the spawn layer can reuse its native copy; made at the first spawn.
     */
    private object Inherited {
        val variables: Map<String, String> = HashMap(System.getenv()).apply {
            keys.removeIf {
                (it.length >= WORKER_VARIABLE_PREFIX.length && it.substring(0, WORKER_VARIABLE_PREFIX.length) == WORKER_VARIABLE_PREFIX) ||
                    it == SocketActivation.LISTEN_PID || it == SocketActivation.LISTEN_FDS || it == SocketActivation.LISTEN_FDNAMES
            }
        }
        val environment: List<String> = environmentBlock(variables)
    }

    /** The fds of one spawn: what the parent keeps, what it closes after the spawn, and cleanup on failure. */
    private class Plumbing(private val name: String) {
        private val closeAfterSpawn = mutableListOf<Int>()
        val sources = arrayOfNulls<PipeSource>(3)
        val extraSources = mutableListOf<PipeSource>()
        var sink: PipeSink? = null

        /** stdout's and stderr's [Redirect.ToLogger] pipes, and the job that logs them, started with the pumps. */
        private val logSources = arrayOfNulls<PipeSource>(3)
        private val logTargets = arrayOfNulls<Redirect.ToLogger>(3)
        private var logging: Job? = null

        private val logReaders = arrayOfNulls<PipeReader>(3)

        /** pty()'s: the parent's control of the terminal, and the path the child opens. */
        var terminal: Terminal? = null
        var terminalPath: String? = null

        /**
         * A new pseudo-terminal of that size, for the child's fd 0 and 1 ([Spawn.TERMINAL], returned):
         * three fds of its master, for [terminal], stdout's source and stdin's sink (one fd each, as
         * the reactor watches each fd for one of them).
         */
        fun terminal(columns: Int, rows: Int, echo: Boolean): Int {
            val opened = Pty.open()
            terminal = Terminal(opened.master)
            Pty.setWindowSize(opened.master, columns, rows)
            if (!echo) Pty.setEcho(opened.master, false)
            val reading = Fds.dupAbove(opened.master, 0)
            sources[1] = try {
                PipeSource(reading, Subprocess.reactor, "terminal of $name", terminal = true)
            } catch (e: IOException) {
                Fds.closeQuietly(reading)
                throw e
            }
            val writing = Fds.dupAbove(opened.master, 0)
            sink = try {
                PipeSink(writing, Subprocess.reactor, "terminal of $name")
            } catch (e: IOException) {
                Fds.closeQuietly(writing)
                throw e
            }
            terminalPath = opened.path
            return Spawn.TERMINAL
        }

        fun logReaders(name: String, pid: Int): List<PipeReader> {
            val readers = ArrayList<PipeReader>(0)
            for (fd in 1..2) {
                val source = logSources[fd] ?: continue
                readers.add(PipeReader(source, STREAM_NAMES[fd] + " of $name (pid $pid)").also { logReaders[fd] = it })
            }
            return readers
        }

        /** Null without a logger redirect: no coroutine then, and no logger touched. */
        fun logging(readers: List<PipeReader>): Job? {
            if (readers.isEmpty()) return null
            // Supervised: a logger that throws on one stream stops that stream only (Background logs the failure).
            return Background.launch(start = CoroutineStart.LAZY) {
                supervisorScope {
                    for (fd in 1..2) {
                        val reader = logReaders[fd] ?: continue
                        val target = logTargets[fd]!!
                        launch { logLines(reader, target.logger, target.level) }
                    }
                }
            }.also { logging = it }
        }

        fun childEnd(fd: Int, redirect: Redirect): Int = when (redirect) {
            Redirect.Inherit -> Spawn.INHERIT
            Redirect.DevNull -> Spawn.DEV_NULL
            Redirect.Stdout -> Spawn.STDOUT
            Redirect.Stream -> {
                if (fd == 0) {
                    val (read, write) = Fds.pipe().let { it[0] to it[1] }
                    closeAfterSpawn += read
                    sink = try {
                        PipeSink(write, Subprocess.reactor, "stdin of $name")
                    } catch (e: IOException) {
                        Fds.closeQuietly(write) // the sink would have owned it
                        throw e
                    }
                    read
                } else {
                    readEnd(fd) { if (fd < 3) sources[fd] = it else extraSources += it }
                }
            }
            // A pipe, as for STREAM; its reader is prefork's own.
            is Redirect.ToLogger -> readEnd(fd) {
                logSources[fd] = it
                logTargets[fd] = redirect
            }
            is Redirect.ToFile -> {
                val flags = when {
                    fd == 0 -> Linux.O_RDONLY
                    redirect.append -> Linux.O_WRONLY or Linux.O_CREAT or Linux.O_APPEND
                    else -> Linux.O_WRONLY or Linux.O_CREAT or Linux.O_TRUNC
                }
                Fds.open(redirect.path.toString(), flags).also { closeAfterSpawn += it }
            }
        }

        /** A pipe for child [fd] (1 and up): the parent's end goes to [keep] as a [PipeSource]; returns the child's end, closed after the spawn. */
        private inline fun readEnd(fd: Int, keep: (PipeSource) -> Unit): Int {
            val (read, write) = Fds.pipe().let { it[0] to it[1] }
            closeAfterSpawn += write
            try {
                keep(PipeSource(read, Subprocess.reactor, if (fd < 3) STREAM_NAMES[fd] + " of $name" else "fd $fd of $name"))
            } catch (e: IOException) {
                Fds.closeQuietly(read)
                throw e
            }
            return write
        }

        fun spawned() {
            closeAfterSpawn.forEach(Fds::closeQuietly)
            closeAfterSpawn.clear()
            sink?.start()
            sources.forEach { it?.start() }
            logSources.forEach { it?.start() }
            extraSources.forEach { it.start() }
            logging?.start()
        }

        fun abandon() {
            closeAfterSpawn.forEach(Fds::closeQuietly)
            closeAfterSpawn.clear()
            sink?.abandon()
            sources.forEach { it?.abandon() }
            logSources.forEach { it?.abandon() }
            extraSources.forEach { it.abandon() }
            terminal?.close()
            logging?.cancel()
        }
    }
}

// Top-level and private: a const in a private companion object is still a public static field to Java.
private const val DEFAULT_COLUMNS = 80
private const val DEFAULT_ROWS = 24
