/*
 * batcher: per epoch, two growing FIFO queues of float images, one per
 * domain.  A run has a few epochs open at once at most (fan-in producers
 * drift apart by little), so the epochs are a small array searched in line.
 */
#include "batcher.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

void batcher_init(batcher *b, int batch, size_t max_bytes)
{
    memset(b, 0, sizeof *b);
    b->batch = batch;
    b->max_bytes = max_bytes;
}

void batcher_free(batcher *b)
{
    for (size_t i = 0; i < b->nep; i++) {
        free(b->ep[i].q[0]);
        free(b->ep[i].q[1]);
    }
    free(b->ep);
    memset(b, 0, sizeof *b);
}

static size_t image_floats_(const batcher *b)
{
    return (size_t)3 * b->size * b->size;
}

static batcher_epoch *find_(const batcher *b, int64_t epoch)
{
    for (size_t i = 0; i < b->nep; i++)
        if (b->ep[i].epoch == epoch)
            return &b->ep[i];
    return NULL;
}

/* The epoch's queues, made on first use; NULL out of memory. */
static batcher_epoch *get_(batcher *b, int64_t epoch)
{
    batcher_epoch *e = find_(b, epoch);
    if (e)
        return e;
    if (b->nep == b->capep) {
        size_t cap = b->capep ? 2 * b->capep : 4;
        batcher_epoch *ep = realloc(b->ep, cap * sizeof *ep);
        if (!ep)
            return NULL;
        b->ep = ep;
        b->capep = cap;
    }
    e = &b->ep[b->nep++];
    memset(e, 0, sizeof *e);
    e->epoch = epoch;
    e->pairs = -1;
    return e;
}

int batcher_announce(batcher *b, int64_t epoch, int64_t pairs)
{
    batcher_epoch *e = get_(b, epoch);
    if (!e)
        return err_set("out of memory");
    if (pairs < 0)
        return 0;
    if (e->pairs >= 0 && e->pairs != pairs)
        return err_set("epoch %lld is announced with %lld pairs and with %lld", (long long)epoch,
                       (long long)e->pairs, (long long)pairs);
    e->pairs = pairs;
    return 0;
}

int batcher_add(batcher *b, const record *r, int64_t epoch)
{
    if (strcmp(record_kind(r), "tensor") != 0)
        return 0;
    const char *dom = record_get_str(r, "domain");
    int d = dom && strcmp(dom, "young") == 0 ? 0 : dom && strcmp(dom, "old") == 0 ? 1 : -1;
    if (d < 0)
        return 0;
    tensor_view v;
    if (record_tensor_view(r, &v) != 0)
        return -1;
    if (v.c != 3 || v.h != v.w)
        return err_set("expected a square 3-channel image, got [%lld,%lld,%lld]", (long long)v.c,
                       (long long)v.h, (long long)v.w);
    if (!b->size)
        b->size = (int)v.h;
    if (v.h != b->size)
        return err_set("a %lldx%lld image in a run of %dx%d images", (long long)v.h, (long long)v.w, b->size,
                       b->size);
    batcher_epoch *e = get_(b, epoch);
    if (!e)
        return err_set("out of memory queueing images");
    if (e->pairs >= 0 && e->got[d] >= e->pairs)
        return err_set("epoch %lld: more %s images than the %lld pairs its epoch record announced",
                       (long long)epoch, dom, (long long)e->pairs);
    size_t per = image_floats_(b), bytes = per * sizeof(float);
    if (b->max_bytes && b->queued_bytes + bytes > b->max_bytes)
        return err_set("over %zu MiB of images queued: one producer is far ahead of another (start them "
                       "together) or the young and old images are far apart in the stream",
                       b->max_bytes >> 20);
    if (e->n[d] == e->cap[d]) {
        size_t cap = e->cap[d] ? 2 * e->cap[d] : 2 * (size_t)b->batch;
        float *q = realloc(e->q[d], cap * bytes);
        if (!q)
            return err_set("out of memory queueing images");
        e->q[d] = q;
        e->cap[d] = cap;
    }
    tensor_view_to_f32(&v, e->q[d] + e->n[d] * per);
    e->n[d]++;
    e->got[d]++;
    b->images[d]++;
    b->queued_bytes += bytes;
    return 1;
}

int batcher_ready(batcher *b, int64_t epoch)
{
    batcher_epoch *e = find_(b, epoch);
    if (!e || e->n[0] < (size_t)b->batch || e->n[1] < (size_t)b->batch)
        return 0;
    b->x = e->q[0];
    b->y = e->q[1];
    return 1;
}

void batcher_pop(batcher *b, int64_t epoch)
{
    batcher_epoch *e = find_(b, epoch);
    if (!e)
        return;
    size_t per = image_floats_(b), k = (size_t)b->batch;
    for (int d = 0; d < 2; d++) {
        memmove(e->q[d], e->q[d] + k * per, (e->n[d] - k) * per * sizeof(float));
        e->n[d] -= k;
    }
    b->queued_bytes -= 2 * k * per * sizeof(float);
}

int batcher_complete(const batcher *b, int64_t epoch)
{
    const batcher_epoch *e = find_(b, epoch);
    return e && e->pairs >= 0 && e->got[0] >= e->pairs && e->got[1] >= e->pairs;
}

int64_t batcher_pairs(const batcher *b, int64_t epoch)
{
    const batcher_epoch *e = find_(b, epoch);
    return e ? e->pairs : -1;
}

int64_t batcher_received(const batcher *b, int64_t epoch, int old)
{
    const batcher_epoch *e = find_(b, epoch);
    return e ? e->got[old ? 1 : 0] : 0;
}

int64_t batcher_next(const batcher *b, int64_t epoch)
{
    int64_t next = 0;
    for (size_t i = 0; i < b->nep; i++)
        if (b->ep[i].epoch > epoch && (!next || b->ep[i].epoch < next))
            next = b->ep[i].epoch;
    return next;
}

void batcher_close(batcher *b, int64_t epoch)
{
    batcher_epoch *e = find_(b, epoch);
    if (!e)
        return;
    size_t left = e->n[0] + e->n[1];
    b->dropped += (long)left;
    b->queued_bytes -= left * image_floats_(b) * sizeof(float);
    free(e->q[0]);
    free(e->q[1]);
    *e = b->ep[--b->nep];
}

size_t batcher_queued(const batcher *b, int64_t epoch, int old)
{
    const batcher_epoch *e = find_(b, epoch);
    return e ? e->n[old ? 1 : 0] : 0;
}
