/* Functions whose parameters the DWARF tests read: `dwarf_target N` calls each N times.
 * Built with -g (DWARF 5 with Debian's gcc; the unit tests also build it with -gdwarf-4). */
#include <stdlib.h>
#include <string.h>

enum colour { RED, GREEN = 7 };
typedef unsigned long counter_t;

struct Inner {
  short s;
  long l;
};

struct Sample {
  int a;
  char name[10];
  int values[3];
  struct Inner inner;
  struct Sample *next;
  unsigned int flag : 1;
  unsigned int level : 3;
  enum colour colour;
  int grid[2][3];
};

union Either {
  int i;
  char c[8];
};

__attribute__((noinline)) int scalars(int n, char c, unsigned long big, counter_t count, enum colour colour) {
  return n + c + (int)big + (int)count + colour;
}

__attribute__((noinline)) int pointers(int *p, const char *text, struct Sample *sample, union Either *either, void *opaque,
                                       char **words) {
  return *p + text[0] + sample->a + either->i + (opaque != 0) + (words[0][0]);
}

__attribute__((noinline)) void noparams(void) {}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1;
  for (int i = 0; i < n; i++) {
    int value = 13;
    struct Sample next = { .a = 2 };
    struct Sample sample = { .a = 123, .values = { 1, 2, 3 }, .inner = { 5, -6 }, .next = &next, .flag = 1, .level = 5,
                             .colour = GREEN, .grid = { { 1, 2, 3 }, { 4, 5, 6 } } };
    strcpy(sample.name, "hello");
    union Either either = { .i = 0x41 };
    char *words[] = { "first", 0 };
    scalars(i, 'x', 1UL << 40, 99, GREEN);
    pointers(&value, "text", &sample, &either, 0, words);
    noparams();
  }
  return 0;
}
