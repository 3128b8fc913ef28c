/* The worker pool (threadpool.h).
 *
 * Waiting is bounded: a thread that waits at a barrier spins a bounded number of
 * iterations, then yields for a bounded time, then blocks (a futex on Linux, a condition
 * variable elsewhere) until the last thread to arrive wakes it. The last arriver makes the
 * wake-up call only when someone sleeps, so the normal case (threads <= free cores: a wait
 * ends while spinning, or while yielding when a peer is still waking up from the hand-off)
 * costs what the spin-then-yield barrier cost. With more threads than the CPUs this process
 * may use, a waiter spins only briefly and blocks at once (as libgomp throttles its spin
 * count): the thread everyone waits for may not be running, and spinning or yielding would
 * only take its CPU time away (oversubscription degrades gracefully instead of collapsing). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* sched_getaffinity, CPU_COUNT */
#endif
#include "threadpool.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#define WORKER_STACK_BYTES ((size_t)8 << 20)

/* the wait budget: spin iterations (cpu_relax each), then sched_yield for a while, then block */
#define SPIN_ITERS 4096             /* as the unbounded barrier spun before it yielded */
#define YIELD_NS 2000000            /* 2 ms: longer than a wake-up from the hand-off's condition variable */
#define SPIN_ITERS_OVERSUBSCRIBED 64
#define YIELD_NS_OVERSUBSCRIBED 0

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

struct q35_pool {
    int n;
    int spin_iters;                 /* the wait budget before blocking (see above) */
    int64_t yield_ns;
    pthread_t *threads;
    /* task hand-off: workers sleep on cv until generation changes */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int generation;
    int quit;
    q35_task_fn fn;
    void *arg;
    /* sense-reversing barrier: spin, yield, then sleep on `sense` */
    atomic_int arrived;
    atomic_int sense;
    atomic_int sleepers;            /* threads blocked (or about to block) on sense */
#ifndef __linux__
    pthread_mutex_t bmu;
    pthread_cond_t bcv;
#endif
};

/* CPUs this process may run on (its affinity mask), at least 1 */
static int cpus_available(void) {
#if defined(__linux__) && defined(CPU_COUNT)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        const int c = CPU_COUNT(&set);
        if (c > 0) return c;
    }
#endif
    const long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? (int)c : 1;
}

static void sleep_while(q35_pool *p, int s) {
#ifdef __linux__
    /* the kernel re-checks sense == s atomically with queueing: a flip in between is not missed */
    syscall(SYS_futex, (int *)&p->sense, FUTEX_WAIT_PRIVATE, s, NULL, NULL, 0);
#else
    pthread_mutex_lock(&p->bmu);
    while (atomic_load_explicit(&p->sense, memory_order_seq_cst) == s) pthread_cond_wait(&p->bcv, &p->bmu);
    pthread_mutex_unlock(&p->bmu);
#endif
}

static void wake_sleepers(q35_pool *p) {
#ifdef __linux__
    syscall(SYS_futex, (int *)&p->sense, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    pthread_mutex_lock(&p->bmu);
    pthread_cond_broadcast(&p->bcv);
    pthread_mutex_unlock(&p->bmu);
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* wait until sense != s: spin, yield, then block */
static void wait_flip(q35_pool *p, int s) {
    for (int i = 0; i < p->spin_iters; i++) {
        if (atomic_load_explicit(&p->sense, memory_order_acquire) != s) return;
        cpu_relax();
    }
    if (p->yield_ns > 0) {
        const int64_t until = now_ns() + p->yield_ns;
        do {
            if (atomic_load_explicit(&p->sense, memory_order_acquire) != s) return;
            sched_yield();
        } while (now_ns() < until);
    }
    /* Dekker pair with the releaser: we publish sleepers then read sense (in the kernel, after a
     * full barrier); it publishes sense then reads sleepers. One of the two sees the other. */
    atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_seq_cst);
    while (atomic_load_explicit(&p->sense, memory_order_seq_cst) == s) sleep_while(p, s); /* the flip, acquired */
    atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_relaxed);
}

void q35_pool_barrier(q35_pool *p) {
    if (p->n == 1) return;
    int s = atomic_load_explicit(&p->sense, memory_order_relaxed);
    if (atomic_fetch_add_explicit(&p->arrived, 1, memory_order_acq_rel) == p->n - 1) {
        atomic_store_explicit(&p->arrived, 0, memory_order_relaxed);
        atomic_store_explicit(&p->sense, !s, memory_order_seq_cst);
        if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst) > 0) wake_sleepers(p);
    } else {
        wait_flip(p, s);
    }
}

typedef struct { q35_pool *p; int ith; } worker_arg;

static void *worker(void *v) {
    worker_arg *wa = v;
    q35_pool *p = wa->p;
    int ith = wa->ith, seen = 0;
    free(wa);
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->generation == seen && !p->quit) pthread_cond_wait(&p->cv, &p->mu);
        if (p->quit) { pthread_mutex_unlock(&p->mu); return NULL; }
        seen = p->generation;
        q35_task_fn fn = p->fn;
        void *arg = p->arg;
        pthread_mutex_unlock(&p->mu);
        fn(arg, ith, p->n);
        q35_pool_barrier(p); /* the caller leaves only when every worker is done */
    }
}

q35_pool *q35_pool_new(int n) {
    if (n < 1) return NULL;
    q35_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n;
    const int oversubscribed = n > cpus_available();   /* more threads than CPUs this process may use */
    p->spin_iters = oversubscribed ? SPIN_ITERS_OVERSUBSCRIBED : SPIN_ITERS;
    p->yield_ns = oversubscribed ? YIELD_NS_OVERSUBSCRIBED : YIELD_NS;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
#ifndef __linux__
    pthread_mutex_init(&p->bmu, NULL);
    pthread_cond_init(&p->bcv, NULL);
#endif
    atomic_init(&p->arrived, 0);
    atomic_init(&p->sense, 0);
    atomic_init(&p->sleepers, 0);
    p->threads = calloc((size_t)n, sizeof *p->threads);
    if (!p->threads) { free(p); return NULL; }
    /* the panel kernels keep up to a few hundred KB of unpacked rows on the stack: ask for a
     * stack of known size rather than the C library's default (128 KB on musl) */
    pthread_attr_t attr;
    const int have_attr = pthread_attr_init(&attr) == 0;
    if (have_attr) pthread_attr_setstacksize(&attr, WORKER_STACK_BYTES);
    for (int i = 1; i < n; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa) { wa->p = p; wa->ith = i; }
        if (!wa || pthread_create(&p->threads[i], have_attr ? &attr : NULL, worker, wa)) {
            free(wa);
            p->n = i;
            if (have_attr) pthread_attr_destroy(&attr);
            q35_pool_free(p);
            return NULL;
        }
    }
    if (have_attr) pthread_attr_destroy(&attr);
    return p;
}

void q35_pool_free(q35_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
#ifndef __linux__
    pthread_mutex_destroy(&p->bmu);
    pthread_cond_destroy(&p->bcv);
#endif
    free(p->threads);
    free(p);
}

int q35_pool_size(const q35_pool *p) { return p->n; }

void q35_pool_run(q35_pool *p, q35_task_fn fn, void *arg) {
    if (p->n == 1) { fn(arg, 0, 1); return; }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->generation++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    q35_pool_barrier(p);
}
