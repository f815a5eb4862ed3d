// Calls probe_address(a) once for each of N distinct addresses spread over libc's code, so a
// tracer keying a map by usym(arg0) must name N different addresses at exit.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void probe_address(unsigned long address) { __asm__ volatile("" ::"r"(address)); }

int main(int argc, char **argv) {
  unsigned long n = argc > 1 ? strtoul(argv[1], 0, 0) : 100000;
  FILE *maps = fopen("/proc/self/maps", "r");
  char line[512];
  unsigned long start = 0, end = 0;
  while (maps && fgets(line, sizeof line, maps)) {
    unsigned long s, e;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) == 3 && perms[2] == 'x' && strstr(line, "libc.so")) {
      start = s;
      end = e;
      break;
    }
  }
  if (!start || (end - start) / n == 0) {
    fprintf(stderr, "libc's code mapping is missing or smaller than %lu bytes\n", n);
    return 1;
  }
  unsigned long stride = (end - start) / n;
  for (unsigned long i = 0; i < n; i++) probe_address(start + i * stride);
  return 0;
}
