/*
 * batcher: two growing FIFO queues of float images, one per domain.
 */
#include "batcher.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

void batcher_init(batcher *b, int batch)
{
    memset(b, 0, sizeof *b);
    b->batch = batch;
}

void batcher_free(batcher *b)
{
    free(b->q[0]);
    free(b->q[1]);
    memset(b, 0, sizeof *b);
}

static size_t image_floats_(const batcher *b)
{
    return (size_t)3 * b->size * b->size;
}

int batcher_add(batcher *b, const record *r)
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
    size_t per = image_floats_(b);
    if (b->n[d] == b->cap[d]) {
        size_t cap = b->cap[d] ? 2 * b->cap[d] : 2 * (size_t)b->batch;
        float *q = realloc(b->q[d], cap * per * sizeof *q);
        if (!q)
            return err_set("out of memory queueing images");
        b->q[d] = q;
        b->cap[d] = cap;
    }
    tensor_view_to_f32(&v, b->q[d] + b->n[d] * per);
    b->n[d]++;
    return 1;
}

int batcher_ready(batcher *b)
{
    if (b->n[0] < (size_t)b->batch || b->n[1] < (size_t)b->batch)
        return 0;
    b->x = b->q[0];
    b->y = b->q[1];
    return 1;
}

void batcher_pop(batcher *b)
{
    size_t per = image_floats_(b), k = (size_t)b->batch;
    for (int d = 0; d < 2; d++) {
        memmove(b->q[d], b->q[d] + k * per, (b->n[d] - k) * per * sizeof(float));
        b->n[d] -= k;
    }
}

void batcher_clear(batcher *b)
{
    b->dropped += (long)(b->n[0] + b->n[1]);
    b->n[0] = b->n[1] = 0;
}

size_t batcher_queued(const batcher *b, int old)
{
    return b->n[old ? 1 : 0];
}
