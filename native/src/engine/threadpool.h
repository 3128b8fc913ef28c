/* A persistent worker pool. q35_pool_run() runs fn(arg, ith, nth) on all
 * nth threads (the caller is thread 0) and returns when all are done.
 * Inside fn, q35_pool_barrier() synchronises all threads: a waiter spins a bounded
 * number of iterations, yields for a bounded time (2 ms), then blocks until the last
 * thread arrives; with more threads than available CPUs it spins briefly and blocks. */
#ifndef Q35_THREADPOOL_H
#define Q35_THREADPOOL_H

#include <stdint.h>

typedef struct q35_pool q35_pool;
typedef void (*q35_task_fn)(void *arg, int ith, int nth);

q35_pool *q35_pool_new(int n_threads); /* NULL on failure */
void q35_pool_free(q35_pool *p);
int q35_pool_size(const q35_pool *p);
void q35_pool_run(q35_pool *p, q35_task_fn fn, void *arg);
void q35_pool_barrier(q35_pool *p);

/* work split: [lo, hi) of n items for thread ith of nth */
static inline void q35_split(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    *lo = n * ith / nth;
    *hi = n * (ith + 1) / nth;
}

/* the same for the columns of an elementwise op: cut at multiples of 16 values, so that a SIMD
 * kernel meets every column in the same lane and the same vector-or-tail code whatever the number
 * of threads (its vector and tail paths may round differently: results stay thread-independent) */
#define Q35_SPLIT_ALIGN 16
static inline void q35_split_cols(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    const int64_t blocks = (n + Q35_SPLIT_ALIGN - 1) / Q35_SPLIT_ALIGN;
    q35_split(blocks, ith, nth, lo, hi);
    *lo = *lo * Q35_SPLIT_ALIGN < n ? *lo * Q35_SPLIT_ALIGN : n;
    *hi = *hi * Q35_SPLIT_ALIGN < n ? *hi * Q35_SPLIT_ALIGN : n;
}

#endif
