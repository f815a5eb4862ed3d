// A target for C struct access at uprobes: nested structs, arrays, unions, bitfields and
// pointers to pointers, passed to functions Scry and bpftrace probe side by side.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdio.h>
#include <unistd.h>

struct Inner {
  int16_t x;
  int64_t y;
};

union Number {
  uint32_t u;
  uint8_t bytes[4];
};

struct Flags {
  unsigned int low : 3;
  unsigned int mid : 9;
  signed int neg : 4;
};

struct Outer {
  int a;
  char name[8];
  struct Inner inner;
  struct Inner *next;
  int values[3];
  union Number number;
  struct Flags flags;
  struct Outer *self;
};

struct Foo {
  int m;
  int n;
};

__attribute__((noinline)) int func(struct Foo *foo) { return foo->m + foo->n; }

// func() starting with a 5-byte NOP (0f 1f 44 00 00), which a kernel can probe without a trap.
int func_nop5(struct Foo *foo);
__asm__(".text\n"
        ".globl func_nop5\n"
        ".type func_nop5, @function\n"
        "func_nop5:\n"
        "    .byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n"
        "    movl (%rdi), %eax\n"
        "    addl 4(%rdi), %eax\n"
        "    ret\n"
        ".size func_nop5, .-func_nop5\n");
__attribute__((noinline)) int outer_func(struct Outer *outer, struct Outer **pp, int32_t *ints) {
  return outer->a + (*pp)->a + ints[1];
}

int main(int argc, char **argv) {
  int count = argc > 1 ? atoi(argv[1]) : 1;
  struct Foo foo = {2, 3};
  struct Inner second = {-7, 1234567890123};
  struct Outer outer = {0};
  outer.a = 42;
  strcpy(outer.name, "outer");
  outer.inner.x = 5;
  outer.inner.y = -9;
  outer.next = &second;
  outer.values[0] = 10;
  outer.values[1] = 20;
  outer.values[2] = 30;
  outer.number.u = 0x01020304;
  outer.flags.low = 5;
  outer.flags.mid = 300;
  outer.flags.neg = -3;
  outer.self = &outer;
  struct Outer *pointer = &outer;
  int32_t ints[4] = {100, 200, 300, 400};
  // Give the tracer time to attach before the first call.
  usleep(argc > 2 ? atoi(argv[2]) * 1000 : 0);
  // `struct_target N 0 bench`: N calls of func_nop5() alone, timed for scripts/bench.sh.
  int bench = argc > 3;
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  int sum = 0;
  for (int i = 0; i < count; i++) {
    sum += bench ? func_nop5(&foo) : func(&foo);
    if (!bench) sum += outer_func(&outer, &pointer, ints);
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  // Otherwise nothing on stdout: the tracer's output is compared.
  if (bench) printf("ns_per_event=%.2f\n", ((end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec)) / count);
  return sum == 0;
}
