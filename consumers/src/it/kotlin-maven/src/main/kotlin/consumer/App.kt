package consumer

import dev.prefork.Redirect
import dev.prefork.Subprocess
import dev.prefork.forkProcesses
import dev.prefork.taskId
import java.time.Duration
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking

/** A Kotlin user's program: `subprocess` runs children, `fork` runs two workers. */
fun main(args: Array<String>) = runBlocking {
    when (args.firstOrNull()) {
        "subprocess" -> subprocess()
        "fork" -> fork()
        else -> throw IllegalArgumentException("usage: App subprocess|fork")
    }
}

private suspend fun subprocess() {
    val done = Subprocess.builder("sh", "-c", "echo out; echo err >&2; exit 3")
        .timeout(Duration.ofSeconds(30)).run()
    println("run: rc=${done.returnCode} stdout=${done.stdoutText()!!.trim()} stderr=${done.stderrText()!!.trim()}")
    val p = Subprocess.builder("printf", "a\\nb\\nc\\n").stdout(Redirect.STREAM).start()
    val lines = p.stdout!!.lines().toList()
    println("lines: $lines rc=${p.waitForExit()}")
    val q = Subprocess.builder("printf", "xyz").stdout(Redirect.STREAM).start()
    val buffer = ByteArray(16)
    var filled = 0
    while (true) {
        val count = q.stdout!!.read(buffer, filled)
        if (count < 0) break
        filled += count
    }
    println("read: ${buffer.decodeToString(0, filled)} rc=${q.waitForExit()}")
}

private suspend fun fork() {
    val id = forkProcesses(numProcesses = 2, maxRestarts = 0)
    // Only workers get here; the supervisor exits 0 once both have exited 0.
    println("worker $id taskId=${taskId()} pid=${ProcessHandle.current().pid()}")
}
