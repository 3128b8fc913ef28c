#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define WORKER_STACK_BYTES ((size_t)8 << 20)

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
    pthread_t *threads;
    /* task hand-off: workers sleep on cv until generation changes */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int generation;
    int quit;
    q35_task_fn fn;
    void *arg;
    /* sense-reversing spin barrier */
    atomic_int arrived;
    atomic_int sense;
};

static void spin_until(atomic_int *v, int want) {
    for (int i = 0; atomic_load_explicit(v, memory_order_acquire) != want; i++) {
        if (i < 4096) cpu_relax();
        else sched_yield(); /* more threads than free cores: let the others run */
    }
}

void q35_pool_barrier(q35_pool *p) {
    if (p->n == 1) return;
    int s = atomic_load_explicit(&p->sense, memory_order_relaxed);
    if (atomic_fetch_add_explicit(&p->arrived, 1, memory_order_acq_rel) == p->n - 1) {
        atomic_store_explicit(&p->arrived, 0, memory_order_relaxed);
        atomic_store_explicit(&p->sense, !s, memory_order_release);
    } else {
        spin_until(&p->sense, !s);
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
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    atomic_init(&p->arrived, 0);
    atomic_init(&p->sense, 0);
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
