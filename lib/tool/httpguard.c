/*
 * httpguard: see httpguard.h.  A fixed table of slots under one mutex; the
 * thread scans it four times a second (512 slots: microseconds).
 */
#include "httpguard.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"

#define SCAN_MS       250
#define EVICT_MIN_AGE 1.0 /* s: a request this young is still arriving, not stalling */

struct slot {
    int fd; /* our dup of the socket; -1: free slot */
    int state, shut;
    double t0; /* when the request began (the connection, or the previous reply) */
};

struct httpguard {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_t tid;
    struct slot *s;
    unsigned n, open;
    double deadline;
    int quit;
    unsigned long late, evicted;
};

static double now_(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void shut_(httpguard *g, struct slot *s, unsigned long *count)
{
    shutdown(s->fd, SHUT_RDWR);
    s->shut = 1;
    g->open--; /* no longer holding a slot in any useful sense */
    (*count)++;
}

/* The oldest reading request, headers before bodies; NULL when none is
 * old enough to evict. */
static struct slot *oldest_(httpguard *g, double now)
{
    struct slot *best = NULL;
    for (unsigned i = 0; i < g->n; i++) {
        struct slot *s = &g->s[i];
        if (s->fd < 0 || s->shut || s->state == HTTPGUARD_DONE || now - s->t0 < EVICT_MIN_AGE)
            continue;
        if (!best || s->state < best->state || (s->state == best->state && s->t0 < best->t0))
            best = s;
    }
    return best;
}

static void scan_(httpguard *g)
{
    double now = now_();
    for (unsigned i = 0; i < g->n; i++) {
        struct slot *s = &g->s[i];
        if (s->fd >= 0 && !s->shut && s->state != HTTPGUARD_DONE && now - s->t0 > g->deadline)
            shut_(g, s, &g->late);
    }
    if (g->open * 4 > g->n * 3) {
        struct slot *s;
        while (g->open * 2 > g->n && (s = oldest_(g, now)))
            shut_(g, s, &g->evicted);
    }
}

static void *run_(void *arg)
{
    httpguard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->quit) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += SCAN_MS * 1000000L;
        if (t.tv_nsec >= 1000000000L)
            t.tv_sec++, t.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&g->wake, &g->mu, &t);
        if (!g->quit)
            scan_(g);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

httpguard *httpguard_open(unsigned max_conns, double deadline_s)
{
    httpguard *g = calloc(1, sizeof *g);
    if (!g || !(g->s = calloc(max_conns ? max_conns : 1, sizeof *g->s))) {
        free(g);
        err_set("httpguard: out of memory");
        return NULL;
    }
    g->n = max_conns ? max_conns : 1;
    g->deadline = deadline_s;
    for (unsigned i = 0; i < g->n; i++)
        g->s[i].fd = -1;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->wake, NULL);
    if (pthread_create(&g->tid, NULL, run_, g) != 0) {
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->wake);
        free(g->s);
        free(g);
        err_set("httpguard: cannot start its thread");
        return NULL;
    }
    return g;
}

void httpguard_free(httpguard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->quit = 1;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->tid, NULL);
    for (unsigned i = 0; i < g->n; i++)
        if (g->s[i].fd >= 0)
            close(g->s[i].fd);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->wake);
    free(g->s);
    free(g);
}

void *httpguard_add(httpguard *g, int fd)
{
    if (!g || fd < 0)
        return NULL;
    struct slot *s = NULL;
    pthread_mutex_lock(&g->mu);
    for (unsigned i = 0; i < g->n && !s; i++)
        if (g->s[i].fd < 0)
            s = &g->s[i];
    if (s && (s->fd = dup(fd)) >= 0) {
        s->state = HTTPGUARD_HEADERS;
        s->shut = 0;
        s->t0 = now_();
        g->open++;
    } else if (s) {
        s->fd = -1;
        s = NULL;
    }
    pthread_mutex_unlock(&g->mu);
    return s;
}

void httpguard_remove(httpguard *g, void *slot)
{
    struct slot *s = slot;
    if (!g || !s)
        return;
    pthread_mutex_lock(&g->mu);
    close(s->fd);
    s->fd = -1;
    if (!s->shut)
        g->open--;
    pthread_mutex_unlock(&g->mu);
}

void httpguard_state(httpguard *g, void *slot, int state)
{
    struct slot *s = slot;
    if (!g || !s)
        return;
    pthread_mutex_lock(&g->mu);
    if (state == HTTPGUARD_HEADERS && s->state != HTTPGUARD_HEADERS)
        s->t0 = now_();
    s->state = state;
    pthread_mutex_unlock(&g->mu);
}

void httpguard_counts(httpguard *g, unsigned long *late, unsigned long *evicted)
{
    pthread_mutex_lock(&g->mu);
    *late = g->late;
    *evicted = g->evicted;
    pthread_mutex_unlock(&g->mu);
}
