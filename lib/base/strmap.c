/*
 * strmap: open addressing with linear probing over a power-of-two table
 * kept at most half full; FNV-1a mixed with a per-process seed.  See
 * strmap.h.
 */
#include "strmap.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "err.h"

struct strmap_slot {
    const char *key; /* NULL: empty */
    size_t len;
    uint64_t hash;
    int value;
};

static _Atomic uint64_t seed_;

static uint64_t seed_get_(void)
{
    uint64_t s = atomic_load(&seed_);
    if (s)
        return s;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)&ts;
    }
    s |= 1;
    uint64_t zero = 0;
    /* the first thread to get here decides */
    return atomic_compare_exchange_strong(&seed_, &zero, s) ? s : zero;
}

static uint64_t hash_(const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed_get_();
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ull;
    }
    /* final avalanche (splitmix64), so the low bits used as the index
     * depend on every byte */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

void strmap_init(strmap *m)
{
    memset(m, 0, sizeof *m);
}

void strmap_free(strmap *m)
{
    if (!m)
        return;
    free(m->slot);
    strmap_init(m);
}

/* The slot holding key, or the empty slot where it would go. */
static struct strmap_slot *find_(const strmap *m, const char *key, size_t len, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        struct strmap_slot *s = &m->slot[i];
        if (!s->key || (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0))
            return s;
    }
}

int strmap_get(const strmap *m, const char *key, size_t len)
{
    if (!m->n)
        return -1;
    const struct strmap_slot *s = find_(m, key, len, hash_(key, len));
    return s->key ? s->value : -1;
}

static int grow_(strmap *m)
{
    size_t cap = m->cap ? 2 * m->cap : 64;
    struct strmap_slot *old = m->slot, *slot = calloc(cap, sizeof *slot);
    if (!slot)
        return err_set("out of memory");
    size_t oldcap = m->cap;
    m->slot = slot;
    m->cap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].key)
            *find_(m, old[i].key, old[i].len, old[i].hash) = old[i];
    free(old);
    return 0;
}

int strmap_put(strmap *m, const char *key, size_t len, int value, int *old)
{
    if (2 * (m->n + 1) > m->cap && grow_(m))
        return -1;
    uint64_t h = hash_(key, len);
    struct strmap_slot *s = find_(m, key, len, h);
    if (s->key) {
        if (old)
            *old = s->value;
        return 1;
    }
    *s = (struct strmap_slot){key, len, h, value};
    m->n++;
    return 0;
}

void strmap_set(strmap *m, const char *key, size_t len, int value)
{
    if (!m->n)
        return;
    struct strmap_slot *s = find_(m, key, len, hash_(key, len));
    if (s->key)
        s->value = value;
}
