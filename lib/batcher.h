/*
 * batcher: pairs unpaired young and old tensor records into training
 * batches.  Records arrive in any order (ZeroMQ fan-in reorders them); each
 * domain has its own queue, and a batch is ready when both queues hold
 * `batch` images: x (young) and y (old), [batch,3,size,size] floats.
 *
 *   batcher b; batcher_init(&b, 4);
 *   while (...) { batcher_add(&b, &rec); while (batcher_ready(&b)) { use b.x, b.y; batcher_pop(&b); } }
 *   batcher_clear(&b);   // epoch end: the incomplete batch is dropped
 *   batcher_free(&b);
 */
#pragma once

#include <stddef.h>

#include "record.h"

typedef struct batcher {
    int batch;
    int size;    /* image side, set by the first tensor (0 until then) */
    float *q[2]; /* queues: young, old; images of 3*size*size floats */
    size_t n[2], cap[2];
    float *x, *y; /* the current batch, valid after batcher_ready() */
    long dropped; /* images dropped by batcher_clear so far */
} batcher;

void batcher_init(batcher *b, int batch);
void batcher_free(batcher *b);
/* Queue a tensor record by its "domain".  1 queued, 0 not a young/old
 * tensor (ignored), -1 bad record (message set: dtype, shape, size). */
int batcher_add(batcher *b, const record *r);
/* Both queues hold a batch: b->x and b->y point at it. */
int batcher_ready(batcher *b);
/* Remove the batch b->x/b->y pointed at. */
void batcher_pop(batcher *b);
/* Drop what is queued (the last incomplete batch of an epoch). */
void batcher_clear(batcher *b);
/* Images queued per domain. */
size_t batcher_queued(const batcher *b, int old);
