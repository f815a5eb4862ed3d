// A target for uprobe tests: calls target(int, const char *) exactly N times with the
// strings TAG-0 … TAG-(N-1), after an optional delay (so a tracer can attach to it by pid).
// usage: uprobe_target N TAG [DELAY_MS]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

__attribute__((noinline)) int target(int n, const char *s)
{
    // Keep the call: the compiler must not fold it into main.
    __asm__ volatile("" ::: "memory");
    return n * 2 + (int)strlen(s);
}

// Takes a function pointer (for `usym(arg0)` tests) and does nothing with it.
__attribute__((noinline)) void register_callback(int (*callback)(int, const char *))
{
    __asm__ volatile("" : : "r"(callback) : "memory");
}

static void pause_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s N TAG [DELAY_MS]\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]);
    long delay = argc > 3 ? atol(argv[3]) : 0;
    pause_ms(delay);
    register_callback(target);
    char text[64];
    long sum = 0;
    for (long i = 0; i < n; i++) {
        snprintf(text, sizeof text, "%s-%ld", argv[2], i);
        sum += target((int)i, text);
    }
    // Give a tracer following this pid time to drain before the process exits.
    pause_ms(delay / 4);
    printf("sum=%ld\n", sum);
    return 0;
}
