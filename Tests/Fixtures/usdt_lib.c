// The shared library of usdt_target.c: probes without semaphores, in a library.
// Build: cc -shared -fPIC -o libscryusdt.so usdt_lib.c
#include <sys/sdt.h>

__attribute__((noinline)) void lib_fire(int round) {
  long doubled = 2L * round;
  STAP_PROBE2(scrylib, fired, round, doubled);
  // A name with quotes in it (no semaphore to name after it): specs write it "\"quoted\"".
  STAP_PROBE1(scrylib, "quoted", round);
}
