// The machine's yardstick: CPU time of a 100-byte TCP round trip over loopback between two processes
// (blocking reads, so every message wakes its reader, as one open-loop chat message does three times).
// This VM's capacity changes from day to day; figures in Benchmarks/RESULTS.md quote it beside each run.
// Build and run: Benchmarks/scripts/loopback_yardstick.sh [ROUND_TRIPS]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void read_full(int fd, char *b, int n) {
    for (int r = 0; r < n;) {
        int k = read(fd, b + r, n - r);
        if (k <= 0) exit(1);
        r += k;
    }
}

static double usec(struct timeval t) { return t.tv_sec * 1e6 + t.tv_usec; }

// `spin`: seconds of a fixed CPU-bound loop (run two at once to see whether vCPUs share a core).
static int spin(void) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    volatile unsigned long x = 0;
    for (unsigned long i = 0; i < 500000000UL; i++) x += i;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%.2f\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && argv[1][0] == 's') return spin();
    int n = argc > 1 ? atoi(argv[1]) : 100000, one = 1;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001), .sin_port = 0};
    socklen_t len = sizeof a;
    if (bind(ls, (void *)&a, sizeof a) || listen(ls, 1) || getsockname(ls, (void *)&a, &len)) return 1;
    if (fork() == 0) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c, (void *)&a, sizeof a)) exit(1);
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char b[100];
        for (int i = 0; i < n; i++) { read_full(c, b, 100); if (write(c, b, 100) != 100) exit(1); }
        exit(0);
    }
    int s = accept(ls, 0, 0);
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char b[100] = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) { if (write(s, b, 100) != 100) return 1; read_full(s, b, 100); }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int status;
    wait(&status);
    struct rusage self, child;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &child);
    double cpu = usec(self.ru_utime) + usec(self.ru_stime) + usec(child.ru_utime) + usec(child.ru_stime);
    double wall = (t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3;
    printf("loopback round trip: %.1f us wall, %.1f us CPU (both processes), %d round trips\n", wall / n, cpu / n, n);
    return 0;
}
