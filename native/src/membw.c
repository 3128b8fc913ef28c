/* Memory read bandwidth (q35_read_bandwidth): n_threads threads of the
 * engine's pool each stream their share of a buffer larger than the caches and
 * sum it, like a token's pass over the weights. A probe of the machine, as
 * cpu.c is. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "q35.h"
#include "engine/threadpool.h"

typedef struct { const uint64_t *buf; size_t n; uint64_t sums[256]; } bw_task;

static void bw_read(void *arg, int ith, int nth) {
    bw_task *t = arg;
    int64_t lo, hi;
    q35_split((int64_t)t->n, ith, nth, &lo, &hi);
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int64_t i = lo;
    for (; i + 4 <= hi; i += 4) { a0 += t->buf[i]; a1 += t->buf[i + 1]; a2 += t->buf[i + 2]; a3 += t->buf[i + 3]; }
    for (; i < hi; i++) a0 += t->buf[i];
    t->sums[ith % 256] = a0 + a1 + a2 + a3;
}

double q35_read_bandwidth(size_t bytes, int n_threads, int reps) {
    if (n_threads < 1 || n_threads > 256 || reps < 1 || bytes < 4096) return -1.0;
    bw_task t = {0};
    t.n = bytes / sizeof(uint64_t);
    uint64_t *buf = NULL;
    if (posix_memalign((void **)&buf, 64, t.n * sizeof(uint64_t))) return -1.0;
    for (size_t i = 0; i < t.n; i++) buf[i] = i;   /* touch every page */
    t.buf = buf;
    q35_pool *pool = q35_pool_new(n_threads);
    if (!pool) { free(buf); return -1.0; }
    q35_pool_run(pool, bw_read, &t);              /* warm-up */
    double best = 0.0;
    for (int r = 0; r < reps; r++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        q35_pool_run(pool, bw_read, &t);
        clock_gettime(CLOCK_MONOTONIC, &b);
        const double s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
        const double gbps = (double)(t.n * sizeof(uint64_t)) / s / 1e9;
        best = gbps > best ? gbps : best;
    }
    q35_pool_free(pool);
    free(buf);
    return best;
}
