/*
 * The operating system's own cost of what the spawn benchmark measures, with no JVM:
 * `spawn-floor N pipes|none` spawns /bin/true N times with posix_spawnp and reaps it with
 * waitpid, one child at a time, and prints the milliseconds per spawn. "none": stdout and
 * stderr to /dev/null; "pipes": three pipes, stdin closed at once, stdout and stderr read to
 * end of file, as the benchmark's prefork and ProcessBuilder variants do.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void drain(int fd) {
    char buffer[4096];
    while (read(fd, buffer, sizeof buffer) > 0) {}
    close(fd);
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: spawn-floor N pipes|none\n"); return 2; }
    int n = atoi(argv[1]);
    int pipes = strcmp(argv[2], "pipes") == 0;
    char *args[] = { "/bin/true", NULL };
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0; i < n; i++) {
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        int in[2], out[2], err[2];
        if (pipes) {
            if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) { perror("pipe2"); return 1; }
            posix_spawn_file_actions_adddup2(&actions, in[0], 0);
            posix_spawn_file_actions_adddup2(&actions, out[1], 1);
            posix_spawn_file_actions_adddup2(&actions, err[1], 2);
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
        }
        pid_t pid;
        int error = posix_spawnp(&pid, args[0], &actions, NULL, args, environ);
        if (error) { fprintf(stderr, "posix_spawnp: %s\n", strerror(error)); return 1; }
        posix_spawn_file_actions_destroy(&actions);
        if (pipes) {
            close(in[0]); close(out[1]); close(err[1]);
            close(in[1]);
            drain(out[0]);
            drain(err[0]);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid) { perror("waitpid"); return 1; }
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    printf("%.6f\n", ((end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec)) / 1e6 / n);
    return 0;
}
