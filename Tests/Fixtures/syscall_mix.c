// A known syscall workload for the syscall carrier tests: N each of getppid, read (7 bytes),
// write (5 bytes) and sched_get_priority_max(SCHED_FIFO) (99; a call no other program makes), then N 32-bit getpid calls through `int $0x80` (ia32 number 20, which is
// writev's number on x86-64: a carrier that took compat calls for native ones would count them
// as writev). Usage: syscall_mix N [DELAY_MS] (DELAY_MS: sleep first, for a tracer given -p to attach).
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1000;
  if (argc > 2) usleep(atoi(argv[2]) * 1000);
  int zero = open("/dev/zero", O_RDONLY);
  int null = open("/dev/null", O_WRONLY);
  char buf[16];
  for (int i = 0; i < n; i++) {
    syscall(SYS_getppid);
    if (read(zero, buf, 7) != 7) return 1;
    if (write(null, buf, 5) != 5) return 1;
    if (sched_get_priority_max(SCHED_FIFO) != 99) return 1;
  }
#if defined(__x86_64__)
  for (int i = 0; i < n; i++) {
    long result;
    // The 32-bit entry does not keep r8-r11.
    __asm__ volatile("int $0x80" : "=a"(result) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
  }
#endif
  return 0;
}
