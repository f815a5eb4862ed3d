// A process that maps a library after a tracer has started: sleeps DELAY_MS, dlopens libm,
// calls target() N times, then lives DELAY_MS more. usage: dlopen_target N DELAY_MS
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) int target(int n) { return n * 2; }

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1;
    int delay = (argc > 2 ? atoi(argv[2]) : 500) * 1000;
    usleep(delay);
    if (!dlopen("libm.so.6", RTLD_NOW)) return 1;
    int sum = 0;
    for (int i = 0; i < n; i++) sum += target(i);
    usleep(delay);
    return sum < 0;
}
