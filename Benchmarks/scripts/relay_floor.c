// The kernel's floor for the end-to-end latency targets: Chorus's one-to-one socket pattern with no
// application work. A relay (`server`) reads fixed-size "send" frames and, per frame, queues an ack
// to the sender and a delivery to its pair (connection i ^ 1). After every 16 reads and at the end of
// each epoll batch (Chorus's commit checkpoint and its "write many, flush once"), it appends the
// frames read to a file with one pwrite (`--log FILE`, Chorus's log with `--fsync never`) and writes
// each socket's queue once; with `--fsync FILE` a writer thread appends and fdatasyncs them instead,
// at most one commit a millisecond (Chorus's `--fsync always` with its default commit interval), and
// acks and deliveries wait for that commit. A generator (`load`) holds CONNS connections, both sides
// of each pair sending, open loop at RATE/s on an evenly spaced schedule (sent every 250 us, latency
// from each slot's intended time) or closed loop with WINDOW frames in flight per connection (RATE 0). Frame sizes follow Chorus's JSON: 160-byte send,
// 120-byte ack, 280-byte delivery. One thread each, epoll, TCP_NODELAY: what any implementation on
// this machine pays in the kernel before doing any work of its own.
// Build and run: Benchmarks/scripts/relay_floor.sh (see there).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

enum { SEND = 160, ACK = 120, DELIVER = 280, MAXC = 19000, OUTCAP = 65536, INCAP = 4096 };

static void die(const char *what) { perror(what); exit(1); }

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + t.tv_nsec;
}

static void nodelay_nonblock(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// ---- relay ----

typedef struct {
    int fd, index, inlen, outlen, dirty;
    unsigned char in[INCAP], out[OUTCAP];
} Conn;

static Conn *conns[MAXC];      // by connection index (from the 4-byte hello)
static Conn *dirty[MAXC];
static int ndirty;

static void queue(Conn *c, unsigned char type, const unsigned char *frame, int size) {
    if (!c) return;
    if (c->outlen + size > OUTCAP) { fprintf(stderr, "output overflow on %d\n", c->index); exit(1); }
    unsigned char *p = c->out + c->outlen;
    memset(p, 'x', size);
    memcpy(p, frame, 24);
    p[0] = type;
    c->outlen += size;
    if (!c->dirty) { c->dirty = 1; dirty[ndirty++] = c; }
}

static void flush_all(void) {
    for (int i = 0; i < ndirty; i++) {
        Conn *c = dirty[i];
        ssize_t k = write(c->fd, c->out, c->outlen);
        if (k != c->outlen) { fprintf(stderr, "short write %zd of %d\n", k, c->outlen); exit(1); }
        c->outlen = 0;
        c->dirty = 0;
    }
    ndirty = 0;
}

// ---- group commit (`--fsync`) ----

enum { BATCHCAP = 1 << 22 };
typedef struct { unsigned char *bytes; size_t len; } Batch;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static Batch pending, done;     // filled by the loop / by the writer, each swapped out under `mu`
static int syncfd, wakefd;
static uint64_t fsync_hist[1000], fsyncs;   // write + fdatasync time, 0.1 ms buckets up to 100 ms; under `mu`
static volatile sig_atomic_t stopping;
static void on_term(int sig) { (void)sig; stopping = 1; }

static void append(Batch *b, const unsigned char *f) {
    if (b->len + SEND > BATCHCAP) { fprintf(stderr, "commit batch overflow\n"); exit(1); }
    memcpy(b->bytes + b->len, f, SEND);
    b->len += SEND;
}

static void *writer(void *unused) {
    (void)unused;
    Batch mine = {malloc(BATCHCAP), 0};
    off_t off = 0;
    uint64_t last = 0;
    for (;;) {
        uint64_t t = now_ns();
        if (t < last + 1000000) usleep((last + 1000000 - t) / 1000);
        pthread_mutex_lock(&mu);
        while (pending.len == 0) pthread_cond_wait(&cv, &mu);
        Batch b = pending; pending = mine; mine = b;
        pthread_mutex_unlock(&mu);
        last = now_ns();
        if (pwrite(syncfd, mine.bytes, mine.len, off) != (ssize_t)mine.len || fdatasync(syncfd)) die("commit");
        uint64_t took = (now_ns() - last) / 100000;
        off += mine.len;
        pthread_mutex_lock(&mu);
        fsync_hist[took < 1000 ? took : 999]++;
        fsyncs++;
        while (done.len + mine.len > BATCHCAP) { pthread_mutex_unlock(&mu); usleep(100); pthread_mutex_lock(&mu); }
        memcpy(done.bytes + done.len, mine.bytes, mine.len);
        done.len += mine.len;
        pthread_mutex_unlock(&mu);
        mine.len = 0;
        uint64_t one = 1;
        if (write(wakefd, &one, 8) != 8) die("eventfd");
    }
    return NULL;
}

// The batch's frames go to the log (one pwrite, or handed to the writer), then every socket written
// to is written once. Runs after each 16 reads and at the end of each epoll batch, as Chorus commits
// every 16 reads and flushes right after (`CommitDeferral.checkpoint`).
static int logfd = -1;
static unsigned char logbuf[1 << 20];
static size_t loglen;
static off_t logoff;
static Batch tick;              // with `--fsync`: frames read since the last hand-over

static void commit_and_flush(void) {
    if (tick.len) {
        pthread_mutex_lock(&mu);
        if (pending.len + tick.len > BATCHCAP) { fprintf(stderr, "commit batch overflow\n"); exit(1); }
        memcpy(pending.bytes + pending.len, tick.bytes, tick.len);
        pending.len += tick.len;
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&mu);
        tick.len = 0;
    }
    if (loglen) {
        if (pwrite(logfd, logbuf, loglen, logoff) != (ssize_t)loglen) die("pwrite");
        logoff += loglen;
        loglen = 0;
    }
    flush_all();
}

static int server(int port, const char *logpath, const char *syncpath) {
    if (logpath && (logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0) die("open");
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(ls, (void *)&a, sizeof a) || listen(ls, 4096)) die("listen");
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    static Conn wake;               // marks the eventfd's epoll entry
    Batch committed = {NULL, 0};
    if (syncpath) {
        if ((syncfd = open(syncpath, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0) die("open");
        wakefd = eventfd(0, EFD_NONBLOCK);
        pending.bytes = malloc(BATCHCAP); done.bytes = malloc(BATCHCAP); committed.bytes = malloc(BATCHCAP); tick.bytes = malloc(BATCHCAP);
        struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &wake};
        epoll_ctl(ep, EPOLL_CTL_ADD, wakefd, &wev);
        pthread_t th;
        pthread_create(&th, NULL, writer, NULL);
    }
    printf("listening\n");
    fflush(stdout);
    signal(SIGTERM, on_term);
    struct epoll_event evs[1024];
    uint64_t reads = 0;
    while (!stopping) {
        int n = epoll_wait(ep, evs, 1024, 200);
        for (int e = 0; e < n; e++) {
            Conn *c = evs[e].data.ptr;
            if (c == &wake) {
                uint64_t ticks;
                if (read(wakefd, &ticks, 8) < 0) continue;
                pthread_mutex_lock(&mu);
                Batch b = done; done = committed; committed = b;
                pthread_mutex_unlock(&mu);
                for (size_t at = 0; at < committed.len; at += SEND) {
                    const unsigned char *f = committed.bytes + at;
                    int index;
                    memcpy(&index, f + 4, 4);
                    queue(conns[index], 2, f, ACK);
                    queue(conns[index ^ 1], 3, f, DELIVER);
                }
                committed.len = 0;
                continue;
            }
            if (!c) {
                int fd = accept(ls, NULL, NULL);
                if (fd < 0) continue;
                nodelay_nonblock(fd);
                c = calloc(1, sizeof *c);
                c->fd = fd;
                c->index = -1;
                struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                continue;
            }
            ssize_t k = read(c->fd, c->in + c->inlen, INCAP - c->inlen);
            if (k <= 0) {
                if (k < 0 && errno == EAGAIN) continue;
                close(c->fd);           // a closed pair member: its peer's deliveries are dropped
                if (c->index >= 0) conns[c->index] = NULL;
                free(c);
                continue;
            }
            c->inlen += k;
            int at = 0;
            if (c->index < 0 && c->inlen >= 4) {
                memcpy(&c->index, c->in, 4);
                if (c->index < 0 || c->index >= MAXC) { fprintf(stderr, "bad index\n"); exit(1); }
                conns[c->index] = c;
                if (write(c->fd, c->in, 4) != 4) die("hello reply");   // registered: the generator may start
                at = 4;
            }
            for (; c->index >= 0 && c->inlen - at >= SEND; at += SEND) {
                const unsigned char *f = c->in + at;
                if (syncpath) { append(&tick, f); continue; }
                queue(c, 2, f, ACK);
                queue(conns[c->index ^ 1], 3, f, DELIVER);
                if (logfd >= 0) { memcpy(logbuf + loglen, f, SEND); loglen += SEND; }
            }
            memmove(c->in, c->in + at, c->inlen - at);
            c->inlen -= at;
            if (++reads % 16 == 0) commit_and_flush();   // at most 16 x 4 KiB of frames: logbuf holds them
        }
        commit_and_flush();
    }
    pthread_mutex_lock(&mu);
    uint64_t seen = 0;
    int b = 0;
    while (b < 999 && (seen += fsync_hist[b]) < fsyncs * 0.99) b++;
    if (fsyncs) printf("fsync p99 <= %.1f ms (%lu commits)\n", (b + 1) * 0.1, fsyncs);
    fflush(stdout);
    _exit(0);
}

// ---- generator ----

typedef struct {
    int fd, index, inlen;
    uint64_t sent, acked, delivered;
    unsigned char in[INCAP];
} Peer;

enum { BUCKETS = 200000 };      // 10 us buckets up to 2 s
static uint64_t hist[BUCKETS], samples;

static void record(uint64_t ns) {
    uint64_t b = ns / 10000;
    hist[b < BUCKETS ? b : BUCKETS - 1]++;
    samples++;
}

static double percentile(double p) {
    uint64_t want = (uint64_t)(p * samples), seen = 0;
    for (int b = 0; b < BUCKETS; b++) if ((seen += hist[b]) > want) return (b + 1) * 0.01;
    return BUCKETS * 0.01;
}

static void send_frame(Peer *p, uint64_t intended) {
    unsigned char f[SEND];
    memset(f, 'y', SEND);
    f[0] = 1;
    memcpy(f + 4, &p->index, 4);
    memcpy(f + 8, &intended, 8);
    memcpy(f + 16, &p->sent, 8);
    if (write(p->fd, f, SEND) != SEND) { fprintf(stderr, "send would block\n"); exit(1); }
    p->sent++;
}

static int load(int port, int nconns, double rate, double duration, double warmup, int window) {
    static Peer peers[MAXC];
    int ep = epoll_create1(0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < nconns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (void *)&a, sizeof a)) die("connect");
        if (write(fd, &i, 4) != 4) die("hello");
        peers[i].fd = fd;
        peers[i].index = i;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &peers[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    for (int i = 0; i < nconns; i++) {          // every connection registered before the first frame
        int back;
        if (read(peers[i].fd, &back, 4) != 4 || back != i) die("hello reply");
        nodelay_nonblock(peers[i].fd);
    }
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec its = {.it_interval = {0, 250000}, .it_value = {0, 250000}};
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);
    uint64_t start = now_ns(), end = start + (uint64_t)(duration * 1e9), warm = start + (uint64_t)(warmup * 1e9);
    uint64_t slot = 0, acked_after_warmup = 0;
    double step = rate > 0 ? 1e9 / rate : 0;
    if (rate > 0) timerfd_settime(tfd, 0, &its, NULL);
    else for (int i = 0; i < nconns; i++) for (int w = 0; w < window; w++) send_frame(&peers[i], now_ns());
    struct epoll_event evs[1024];
    for (;;) {
        int n = epoll_wait(ep, evs, 1024, 100);
        uint64_t t = now_ns();
        if (t >= end + 500000000u) break;           // half a second to drain
        for (int e = 0; e < n; e++) {
            Peer *p = evs[e].data.ptr;
            if (!p) {
                uint64_t ticks;
                if (read(tfd, &ticks, 8) < 0) die("timerfd");
                for (uint64_t due; (due = start + (uint64_t)(slot * step)) <= t && due < end; slot++)
                    send_frame(&peers[slot % nconns], due);
                continue;
            }
            ssize_t k = read(p->fd, p->in + p->inlen, INCAP - p->inlen);
            if (k <= 0) { if (k < 0 && errno == EAGAIN) continue; die("server closed"); }
            p->inlen += k;
            int at = 0;
            for (;;) {
                if (p->inlen - at < 1) break;
                int size = p->in[at] == 2 ? ACK : DELIVER;
                if (p->inlen - at < size) break;
                uint64_t intended;
                memcpy(&intended, p->in + at + 8, 8);
                if (p->in[at] == 2) {
                    p->acked++;
                    if (t >= warm && t < end) acked_after_warmup++;
                    if (rate == 0 && t < end) send_frame(p, t);
                } else {
                    p->delivered++;
                    if (intended >= warm) record(t - intended);
                }
                at += size;
            }
            memmove(p->in, p->in + at, p->inlen - at);
            p->inlen -= at;
        }
    }
    uint64_t sent = 0, acked = 0, delivered = 0;
    for (int i = 0; i < nconns; i++) { sent += peers[i].sent; acked += peers[i].acked; delivered += peers[i].delivered; }
    for (int i = 0; i < nconns; i++)
        if (peers[i].acked != peers[i].sent || peers[i ^ 1].delivered != peers[i].sent)
            fprintf(stderr, "connection %d: sent %lu, acked %lu, delivered to its pair %lu\n", i, peers[i].sent, peers[i].acked, peers[i ^ 1].delivered);
    printf("{\"sent\": %lu, \"acked\": %lu, \"delivered\": %lu, \"ackedPerSecond\": %.0f, "
           "\"endToEndMs\": {\"p50\": %.2f, \"p99\": %.2f, \"p999\": %.2f}}\n",
           sent, acked, delivered, acked_after_warmup / (duration - warmup),
           percentile(0.50), percentile(0.99), percentile(0.999));
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "server")) {
        int hasfile = argc >= 5;
        return server(atoi(argv[2]), hasfile && !strcmp(argv[3], "--log") ? argv[4] : NULL,
                      hasfile && !strcmp(argv[3], "--fsync") ? argv[4] : NULL);
    }
    if (argc >= 8 && !strcmp(argv[1], "load"))
        return load(atoi(argv[2]), atoi(argv[3]), atof(argv[4]), atof(argv[5]), atof(argv[6]), atoi(argv[7]));
    fprintf(stderr, "usage: relay_floor server PORT [--log FILE | --fsync FILE] | load PORT CONNS RATE DURATION WARMUP WINDOW\n");
    return 2;
}
