// USDT probes for Scry's usdt: tests, built with <sys/sdt.h> (systemtap-sdt-dev).
// Every probe of this file has a semaphore (`_SDT_HAS_SEMAPHORES` covers the translation unit);
// only `scry:guarded` checks its own, so it fires only while a tracer holds it.
// The shared library usdt_lib.c (built beside it) adds probes without semaphores.
// Usage: usdt_target [ITERATIONS [DELAY_MS]]; with ITERATIONS 0, runs until killed.
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEMAPHORE(name) unsigned short scry_##name##_semaphore __attribute__((section(".probes"))) __attribute__((used))
SEMAPHORE(ints);
SEMAPHORE(text);
SEMAPHORE(guarded);
SEMAPHORE(constant);
SEMAPHORE(indexed);
SEMAPHORE(twice);

void lib_fire(int round);

__attribute__((noinline)) static void fire(int round, const char *source) {
  // On the stack, so the page is present when the probe's reader copies it (a string constant's
  // page may not be mapped in yet, and a BPF read cannot fault it in).
  char text[16];
  strncpy(text, source, sizeof text - 1);
  text[sizeof text - 1] = 0;
  int8_t small = (int8_t)(-round - 1);
  uint16_t half = (uint16_t)(60000 + round);
  int32_t word = -100000 * (round + 1);
  uint64_t wide = 0xfedcba9876543210ull + (uint64_t)round;
  STAP_PROBE4(scry, ints, small, half, word, wide);
  STAP_PROBE2(scry, text, text, round);
  if (scry_guarded_semaphore) STAP_PROBE1(scry, guarded, round);
  STAP_PROBE1(scry, constant, 5);
}

// Inlined at two call sites: one probe name, two notes (two addresses, maybe other registers).
static inline __attribute__((always_inline)) void twice(int value) { STAP_PROBE1(scry, twice, value); }
__attribute__((noinline)) static void first(int round) { twice(round); }
__attribute__((noinline)) static void second(int round) { twice(round * 10 + 1); }

// An array element: gcc writes the operand as an indexed address, `-4@(%rdi,%rsi,4)`.
__attribute__((noinline)) static void pick(const int *values, long index) {
  STAP_PROBE1(scry, indexed, values[index]);
}

int main(int argc, char **argv) {
  int iterations = argc > 1 ? atoi(argv[1]) : 1;
  int delay = argc > 2 ? atoi(argv[2]) : 100;
  static const char *texts[] = {"hello", "usdt", "scry"};
  for (int round = 0; iterations == 0 || round < iterations; round++) {
    struct timespec pause = {delay / 1000, (delay % 1000) * 1000000L};
    nanosleep(&pause, NULL);
    fire(round, texts[round % 3]);
    lib_fire(round);
    static const int squares[] = {0, 1, 4, 9, 16, 25, 36, 49};
    pick(squares, round % 8);
    first(round);
    second(round);
  }
  return 0;
}
