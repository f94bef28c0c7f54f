/*
 * strmap: a hash index from strings to ints (positions in the caller's own
 * arrays), so that name lookups and duplicate checks over the thousands of
 * names a hostile file may hold cost O(1) each instead of a linear scan.
 * Keys are REFERENCED, not copied: each must stay alive and unchanged as
 * long as the map (tf_set names, pickle strings, a prefix of a name given
 * with its length).  The hash is seeded once per process, so an input
 * cannot be crafted offline to make every key collide.
 *
 *   strmap m = {0};                          // or strmap_init(&m)
 *   int old;
 *   if (strmap_put(&m, name, strlen(name), i, &old) == 1) ... // name seen at old
 *   int at = strmap_get(&m, "G.model.1.weight", 16);          // -1 if absent
 *   strmap_free(&m);
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct strmap_slot;

typedef struct strmap {
    struct strmap_slot *slot; /* cap slots, open addressing, linear probing */
    size_t cap, n;
} strmap;

void strmap_init(strmap *m);
void strmap_free(strmap *m); /* NULL-safe; leaves the map empty */

/* The value stored for key[0..len), or -1 when absent. */
int strmap_get(const strmap *m, const char *key, size_t len);
/* Store value for key[0..len) (value >= 0).  0 when added; 1 when the key
 * was already there (its value kept, and written to *old unless NULL);
 * -1 + err_set when out of memory. */
int strmap_put(strmap *m, const char *key, size_t len, int value, int *old);
/* Replace the value of a key that is there (no-op when absent). */
void strmap_set(strmap *m, const char *key, size_t len, int value);
