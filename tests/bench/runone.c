/* runone: runs one benchmarked command and measures it from the outside.
 *
 *   runone [--null-stdout] PREFIX CMD [ARGS...]
 *
 * Meant to run inside the benchmark namespace (ip netns exec NS runone ...), so that
 * namespace entry is not part of the measurement. The command's stdout goes to
 * PREFIX.out (or /dev/null with --null-stdout, as in `conntrack -L > /dev/null`), its
 * stderr to PREFIX.err. PREFIX.m gets one JSON object:
 *   {"status":S,"wall":W,"user":U,"sys":Y,"maxrss_kib":K}
 * wall: seconds from fork to the end of wait4 (CLOCK_MONOTONIC); user/sys: the command's
 * CPU seconds (wait4 rusage, microsecond resolution; the kernel's work of a netlink dump
 * runs in the reader's recvmsg and counts as its sys time); maxrss_kib: its peak RSS.
 * status: the exit status, or 128+signal. runone exits with the same status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv(struct timeval t)
{
    return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    int null_stdout = 0;
    int i = 1;
    if (i < argc && strcmp(argv[i], "--null-stdout") == 0) {
        null_stdout = 1;
        i++;
    }
    if (argc - i < 2) {
        fprintf(stderr, "usage: runone [--null-stdout] PREFIX CMD [ARGS...]\n");
        return 2;
    }
    const char *prefix = argv[i++];
    char path[4096];

    snprintf(path, sizeof path, "%s.out", prefix);
    int out = open(null_stdout ? "/dev/null" : path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    snprintf(path, sizeof path, "%s.err", prefix);
    int err = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0 || err < 0) {
        perror("runone: open");
        return 2;
    }

    double start = now();
    pid_t pid = fork();
    if (pid < 0) {
        perror("runone: fork");
        return 2;
    }
    if (pid == 0) {
        if (dup2(out, 1) < 0 || dup2(err, 2) < 0)
            _exit(127);
        execvp(argv[i], &argv[i]);
        dprintf(2, "runone: exec %s failed\n", argv[i]);
        _exit(127);
    }
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    /* Bounded by the child's life; the caller wraps runone in timeout(1). */
    pid_t w;
    do {
        w = wait4(pid, &st, 0, &ru);
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
        perror("runone: wait4");
        return 2;
    }
    double wall = now() - start;
    int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);

    snprintf(path, sizeof path, "%s.m", prefix);
    FILE *m = fopen(path, "w");
    if (!m) {
        perror("runone: write");
        return 2;
    }
    fprintf(m, "{\"status\":%d,\"wall\":%.6f,\"user\":%.6f,\"sys\":%.6f,\"maxrss_kib\":%ld}\n",
            status, wall, tv(ru.ru_utime), tv(ru.ru_stime), ru.ru_maxrss);
    fclose(m);
    return status;
}
