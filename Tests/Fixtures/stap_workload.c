// A scripted workload for the SystemTap corpus: each argument is one step, run in order, so a
// script's counts and sizes are known in advance.
//   getppid:N getuid:N getgid:N yield:N   N calls of that syscall
//   read:SIZE:N  write:SIZE:N             N reads from /dev/zero, N writes to /dev/null, of SIZE bytes
//   open:PATH                             openat(PATH) and close (a failed open is kept going)
//   sleep:MS                              one nanosleep
//   work:N                                N calls of work(i) for i = 0…N-1 (returns i * i)
//   nap:MS                                one call of nap(MS), which sleeps MS milliseconds
// usage: stap_workload STEP…
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) long work(long i)
{
    __asm__ volatile("" ::: "memory");
    return i * i;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

__attribute__((noinline)) long nap(long ms)
{
    sleep_ms(ms);
    __asm__ volatile("" ::: "memory");
    return ms;
}

int main(int argc, char **argv)
{
    static char buf[65536];
    int zero = open("/dev/zero", O_RDONLY), null = open("/dev/null", O_WRONLY);
    long total = 0;
    for (int a = 1; a < argc; a++) {
        char name[32];
        long x = 0, y = 0;
        if (strncmp(argv[a], "open:", 5) == 0) {
            int fd = open(argv[a] + 5, O_RDONLY);
            if (fd >= 0) close(fd);
            continue;
        }
        int got = sscanf(argv[a], "%31[a-z]:%ld:%ld", name, &x, &y);
        if (got < 2 || x < 0 || y < 0 || (size_t)x > sizeof buf) {
            fprintf(stderr, "bad step %s\n", argv[a]);
            return 2;
        }
        for (long i = 0; i < (got == 3 ? y : x); i++) {
            if (strcmp(name, "getppid") == 0) syscall(SYS_getppid);
            else if (strcmp(name, "getuid") == 0) syscall(SYS_getuid);
            else if (strcmp(name, "getgid") == 0) syscall(SYS_getgid);
            else if (strcmp(name, "yield") == 0) sched_yield();
            else if (strcmp(name, "read") == 0 && read(zero, buf, x) != x) return 1;
            else if (strcmp(name, "write") == 0 && write(null, buf, x) != x) return 1;
            else if (strcmp(name, "work") == 0) total += work(i);
            else if (strcmp(name, "sleep") == 0) { sleep_ms(x); break; }
            else if (strcmp(name, "nap") == 0) { total += nap(x); break; }
        }
    }
    return total < 0;
}
