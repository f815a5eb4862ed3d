// A process with "JIT" code: an anonymous executable page named only by perf's
// /tmp/perf-PID.map, as JITs (V8, the JVM with perf-map-agent, LuaJIT) write it.
// Prints its pid, calls announce(code) once, runs the code, and leaves the map behind, as JITs do.
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

__attribute__((noinline)) void announce(void *code) { __asm__ volatile("" : : "r"(code) : "memory"); }

int main(void)
{
    unsigned char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) return 1;
    memset(page, 0xc3, 64); // ret
    char path[64];
    snprintf(path, sizeof path, "/tmp/perf-%d.map", getpid());
    FILE *map = fopen(path, "w");
    if (!map) return 1;
    fprintf(map, "%lx 20 jitted_function\n", (unsigned long)(page + 16));
    fclose(map);
    printf("pid=%d\n", getpid());
    fflush(stdout);
    announce(page + 20);
    ((void (*)(void))(page + 16))();
    return 0;
}
