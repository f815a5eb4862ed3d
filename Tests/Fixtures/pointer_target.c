// A target for strings behind tracepoint pointers.
//   pointer_target TAG       opens /tmp/scry-ptr-TAG-0..2 (they need not exist), forks a child
//                            that opens /tmp/scry-ptr-TAG-child and exits at once, then execs
//                            /bin/true with the arguments "TAG-a" "TAG b" "" "TAG-c"
//   pointer_target loop N    N openat calls on one missing path; prints ns_per_event=... like
//                            the bench workload (the open-heavy loop for benchmarks)
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "loop") == 0) {
        long long n = atoll(argv[2]);
        long long t0 = now_ns();
        for (long long i = 0; i < n; i++) {
            int fd = open("/tmp/scry-open-loop-missing", O_RDONLY);
            if (fd >= 0) close(fd);
        }
        long long t1 = now_ns();
        printf("mode=loop events=%lld ns_per_event=%.1f\n", n, (double)(t1 - t0) / n);
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s TAG | loop N\n", argv[0]);
        return 2;
    }
    char path[256];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "/tmp/scry-ptr-%s-%d", argv[1], i);
        int fd = open(path, O_RDONLY);
        if (fd >= 0) close(fd);
    }
    pid_t child = fork();
    if (child == 0) {
        // Exits right after the call: user space could not read its memory afterwards.
        snprintf(path, sizeof path, "/tmp/scry-ptr-%s-child", argv[1]);
        open(path, O_RDONLY);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    char a[64], b[64], c[64];
    snprintf(a, sizeof a, "%s-a", argv[1]);
    snprintf(b, sizeof b, "%s b", argv[1]);
    snprintf(c, sizeof c, "%s-c", argv[1]);
    char *args[] = { "/bin/true", a, b, "", c, NULL };
    execv("/bin/true", args);
    return 127;
}
