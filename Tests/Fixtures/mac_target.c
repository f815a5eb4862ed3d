// A six-byte char array with no NUL in it, in a struct passed to a function a uprobe reads:
// macaddr() must print all six bytes, not the five a string of that size keeps; buf() of an
// array field copies all of it.
struct S {
  const char *p;
  char mac[6];
  unsigned short e[2];
};

__attribute__((noinline)) int func(struct S *s) { return s->mac[0]; }

int main(void) {
  struct S s = {"x", {5, 4, 3, 2, 1, 2}, {9, 10}};
  return func(&s) == 5 ? 0 : 1;
}
