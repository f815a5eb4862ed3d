// Calls getppid() N times as root, then drops to uid/gid 65534 and calls it N times more:
// a tracer must see the credentials each call was made with.
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10;
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
    if (setgid(65534) != 0 || setuid(65534) != 0)
        return 1;
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
    return 0;
}
