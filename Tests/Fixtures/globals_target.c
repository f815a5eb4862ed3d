// A target for uaddr() tests: variables of 1, 2, 4 and 8 bytes, and a function to probe.
// usage: globals_target [DELAY_MS]
#include <stdlib.h>
#include <time.h>

signed char GLOBAL_8 = -8;
short GLOBAL_16 = 0x1616;
int GLOBAL_32 = 0x32323232;
long GLOBAL_64 = 0x6464646464646464;
char GLOBAL_TEXT[12] = "twelve";

__attribute__((noinline)) int probed(int n)
{
    __asm__ volatile("" ::: "memory");
    return n + GLOBAL_32;
}

int main(int argc, char **argv)
{
    long ms = argc > 1 ? atol(argv[1]) : 300;
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
    return probed(1) & 1;
}
