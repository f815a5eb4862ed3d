// tool_workload.c - fires the probes of bpftrace's tools (/usr/sbin/*.bt) a known number of times,
// so their output under bpftrace and under Scry can be compared (ToolParityTests).
//
//   tool_workload exec N        N x fork + execve("/bin/echo", "scry-tool-parity", i)   execsnoop
//   tool_workload kill N        N x kill(getpid(), 0)                                   killsnoop
//   tool_workload nanosleep N   N x nanosleep(2) of 2 ms (the raw syscall, not glibc's clock_nanosleep)  naptime
//   tool_workload setuid        setuid(0), setfsuid(0), setresuid(0, 0, 0)              setuids
//   tool_workload sync FILE     sync, syncfs, fsync, fdatasync, sync_file_range, msync  syncsnoop
//   tool_workload resolve N     N x getaddrinfo("localhost"), gethostbyname("localhost") gethostlatency
//   tool_workload syscalls N    N x getppid(2)                                          syscount
//   tool_workload fork N        N x fork + _exit                                        pidpersec
//   tool_workload spin MS       one busy thread per CPU, each pinned, for MS ms          cpuwalk
//   tool_workload direct FILE N N x 4096-byte O_DIRECT writes + fsync                   bitesize
//
// Build: cc -O2 -o tool_workload tool_workload.c
#define _GNU_SOURCE
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void run_exec(int n)
{
    for (int i = 0; i < n; i++) {
        char index[16];
        snprintf(index, sizeof index, "%d", i);
        pid_t child = fork();
        if (child == 0) {
            // On the child's stack, which is resident: a tracer reads argv at sys_enter_execve and
            // cannot fault in the pages of .rodata the child has not touched since fork.
            char path[] = "/bin/echo", word[] = "scry-tool-parity";
            char *argv[] = {path, word, index, NULL};
            execv(argv[0], argv);
            _exit(127);
        }
        waitpid(child, NULL, 0);
    }
}

static void run_sync(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "scry-tool-parity\n", 17) != 17 || ftruncate(fd, 4096) != 0) exit(1);
    sync();
    syncfs(fd);
    fsync(fd);
    fdatasync(fd);
    sync_file_range(fd, 0, 4096, SYNC_FILE_RANGE_WRITE);
    void *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) exit(1);
    msync(map, 4096, MS_SYNC);
    munmap(map, 4096);
    close(fd);
    unlink(path);
}

static void run_resolve(int n)
{
    for (int i = 0; i < n; i++) {
        struct addrinfo *result = NULL;
        if (getaddrinfo("localhost", NULL, NULL, &result) == 0) freeaddrinfo(result);
        gethostbyname("localhost");
    }
}

static long spin_ms;

static void *spin(void *cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)(long)cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do clock_gettime(CLOCK_MONOTONIC, &now);
    while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < spin_ms);
    return NULL;
}

static void run_spin(long ms)
{
    spin_ms = ms;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    pthread_t threads[256];
    for (long i = 0; i < cpus && i < 256; i++) pthread_create(&threads[i], NULL, spin, (void *)i);
    for (long i = 0; i < cpus && i < 256; i++) pthread_join(threads[i], NULL);
}

static void run_direct(const char *path, int n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0644);
    if (fd < 0) exit(1);
    void *block;
    if (posix_memalign(&block, 4096, 4096) != 0) exit(1);
    memset(block, 'x', 4096);
    for (int i = 0; i < n; i++) {
        if (pwrite(fd, block, 4096, (off_t)i * 4096) != 4096) exit(1);
        fsync(fd);
    }
    close(fd);
    unlink(path);
}

int main(int argc, char **argv)
{
    if (argc < 2) return 2;
    const char *mode = argv[1];
    int n = argc > 2 ? atoi(argv[2]) : 1;
    if (!strcmp(mode, "exec")) {
        run_exec(n);
    } else if (!strcmp(mode, "kill")) {
        for (int i = 0; i < n; i++) kill(getpid(), 0);
    } else if (!strcmp(mode, "nanosleep")) {
        struct timespec nap = {0, 2000000};
        for (int i = 0; i < n; i++) syscall(SYS_nanosleep, &nap, NULL);
    } else if (!strcmp(mode, "setuid")) {
        if (setuid(0) != 0) return 1;
        setfsuid(0);
        if (setresuid(0, 0, 0) != 0) return 1;
    } else if (!strcmp(mode, "sync") && argc > 2) {
        run_sync(argv[2]);
    } else if (!strcmp(mode, "resolve")) {
        run_resolve(n);
    } else if (!strcmp(mode, "syscalls")) {
        for (int i = 0; i < n; i++) syscall(SYS_getppid);
    } else if (!strcmp(mode, "fork")) {
        for (int i = 0; i < n; i++) {
            pid_t child = fork();
            if (child == 0) _exit(0);
            waitpid(child, NULL, 0);
        }
    } else if (!strcmp(mode, "spin")) {
        run_spin(n);
    } else if (!strcmp(mode, "direct") && argc > 3) {
        run_direct(argv[2], atoi(argv[3]));
    } else {
        return 2;
    }
    return 0;
}
