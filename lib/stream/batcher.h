/*
 * batcher: pairs unpaired young and old tensor records into training
 * batches, epoch by epoch.  Records arrive in any order (ZeroMQ fan-in
 * interleaves its producers, one of which may be epochs ahead), so each
 * epoch has its own pair of queues, one per domain, and a batch of an
 * epoch is formed only from that epoch's images: x (young) and y (old),
 * [batch,3,size,size] floats.  An epoch's `pairs` (from its epoch record)
 * tells when all its images have come.
 *
 *   batcher b; batcher_init(&b, 4, max_bytes);
 *   batcher_announce(&b, e, pairs);                  // an epoch record
 *   batcher_add(&b, &rec, e);                        // a tensor of epoch e
 *   while (batcher_ready(&b, e)) { use b.x, b.y; batcher_pop(&b, e); }
 *   if (batcher_complete(&b, e)) batcher_close(&b, e);  // the rest is dropped
 *   batcher_free(&b);
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "record.h"

/* The queues of one epoch. */
typedef struct batcher_epoch {
    int64_t epoch;
    int64_t pairs; /* images per domain the epoch record announced; -1 unknown */
    int64_t got[2];
    float *q[2]; /* queues: young, old; images of 3*size*size floats */
    size_t n[2], cap[2];
} batcher_epoch;

typedef struct batcher {
    int batch;
    int size; /* image side, set by the first tensor (0 until then) */
    batcher_epoch *ep;
    size_t nep, capep;
    size_t queued_bytes, max_bytes; /* images held in all queues, and the bound on it */
    float *x, *y;                   /* the current batch, valid after batcher_ready() */
    long dropped;                   /* images dropped by batcher_close so far */
    long images[2];                 /* images queued in all, young and old */
} batcher;

/* max_bytes bounds the images held at once (0: no bound). */
void batcher_init(batcher *b, int batch, size_t max_bytes);
void batcher_free(batcher *b);
/* Epoch `epoch` holds `pairs` young and as many old images (pairs < 0:
 * unknown, the epoch is only noted).  -1 when an earlier announcement said
 * another number. */
int batcher_announce(batcher *b, int64_t epoch, int64_t pairs);
/* Queue a tensor record of epoch `epoch` by its "domain".  1 queued, 0 not
 * a young/old tensor (ignored), -1 bad record or over a bound (message
 * set: dtype, shape, size, more images than announced, memory). */
int batcher_add(batcher *b, const record *r, int64_t epoch);
/* Both queues of the epoch hold a batch: b->x and b->y point at it. */
int batcher_ready(batcher *b, int64_t epoch);
/* Remove the batch b->x/b->y pointed at. */
void batcher_pop(batcher *b, int64_t epoch);
/* All the images the epoch's record announced have come. */
int batcher_complete(const batcher *b, int64_t epoch);
/* The pairs announced for the epoch (-1 unknown) and the images received
 * of a domain (0 young, 1 old) so far. */
int64_t batcher_pairs(const batcher *b, int64_t epoch);
int64_t batcher_received(const batcher *b, int64_t epoch, int old);
/* The smallest epoch after `epoch` that has announced or queued anything;
 * 0 if none. */
int64_t batcher_next(const batcher *b, int64_t epoch);
/* Forget the epoch: what is queued (its last incomplete batch) is dropped. */
void batcher_close(batcher *b, int64_t epoch);
/* Images of the epoch queued per domain. */
size_t batcher_queued(const batcher *b, int64_t epoch, int old);
