// malloc_target.c - N calls of malloc that each reach libc's local _int_malloc.
//
//   malloc_target N
//
// The blocks are never freed: a freed block would be handed back from the thread cache by
// malloc itself, without calling _int_malloc, and the count would depend on the allocator.
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1;
  for (int i = 0; i < n; i++) {
    volatile char *block = malloc(200);
    if (!block) return 1;
    block[0] = (char)i;
  }
  return 0;
}
