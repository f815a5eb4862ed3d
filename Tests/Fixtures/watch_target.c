// Memory for watchpoint tests to watch, touched a known number of times.
//   watch_target fixed N   writes one byte at 0x10000000 (mapped there) N times
//   watch_target arg N     calls increment(0, p) N times on one int, which it writes once more after each call
//   watch_target many N    calls bump(p) once on each of N new ints
//   watch_target touch N   calls touch(0, p) N times on one int; touch writes it after another write
// Each writes with a pause between, and exits when done.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

__attribute__((noinline)) void increment(__attribute__((unused)) int unused, int *i) { (*i)++; }

__attribute__((noinline)) void bump(int *i) { (*i)++; }

// The write to *i is not touch's first instruction, where its uprobe sits (that one runs before
// a stop the uprobe asks for takes effect).
volatile int calls;
__attribute__((noinline)) void touch(__attribute__((unused)) int unused, int *i) {
  calls++;
  (*(volatile int *)i)++;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: watch_target fixed|arg|many|touch N\n");
    return 2;
  }
  int n = atoi(argv[2]);
  if (strcmp(argv[1], "fixed") == 0) {
    volatile uint8_t *addr = mmap((void *)0x10000000, 2 << 20, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (addr == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
    for (int k = 0; k < n; k++) {
      *addr = (uint8_t)k;
      usleep(1000);
    }
  } else if (strcmp(argv[1], "arg") == 0) {
    int *i = malloc(sizeof(int));
    for (int k = 0; k < n; k++) {
      increment(0, i);
      (*(volatile int *)i)++;
      usleep(1000);
    }
  } else if (strcmp(argv[1], "touch") == 0) {
    int *i = malloc(sizeof(int));
    for (int k = 0; k < n; k++) {
      touch(0, i);
      usleep(1000);
    }
  } else {
    for (int k = 0; k < n; k++) {
      bump(malloc(sizeof(int)));
      usleep(1000);
    }
  }
  return 0;
}
