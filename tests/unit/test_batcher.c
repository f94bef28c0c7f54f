/*
 * batcher: batches of an epoch hold that epoch's images only, whatever
 * order the epochs' records come in; an epoch knows when it is complete
 * from its announced pairs; counts, announcements and the memory bound are
 * checked.
 */
#include "stream/batcher.h"
#include "check.h"
#include "base/err.h"

enum { SIDE = 4, PER = 3 * SIDE * SIDE };

/* Queue one young (old=0) or old image of epoch e whose pixels all equal v. */
static int add(batcher *b, int64_t e, int old, float v)
{
    float px[PER];
    for (int i = 0; i < PER; i++)
        px[i] = v;
    record r;
    record_init(&r);
    record_set_str(&r, "kind", "tensor");
    record_set_str(&r, "domain", old ? "old" : "young");
    record_set_tensor_f32(&r, px, 3, SIDE, SIDE, DTYPE_F32);
    int rc = batcher_add(b, &r, e);
    record_clear(&r);
    return rc;
}

static int test_epochs_interleaved(void)
{
    batcher b;
    batcher_init(&b, 2, 0);
    EXPECT(batcher_announce(&b, 1, 2) == 0 && batcher_announce(&b, 2, 2) == 0, "%s", err_msg());
    /* epoch 2's young images come before epoch 1's (a producer ahead) */
    EXPECT(add(&b, 2, 0, 0.2f) == 1 && add(&b, 2, 0, 0.2f) == 1, "%s", err_msg());
    EXPECT(add(&b, 1, 0, 0.1f) == 1 && add(&b, 1, 1, -0.1f) == 1, "%s", err_msg());
    EXPECT(!batcher_ready(&b, 1) && !batcher_complete(&b, 1), "epoch 1 is not ready with one pair");
    EXPECT(add(&b, 1, 0, 0.1f) == 1 && add(&b, 1, 1, -0.1f) == 1, "%s", err_msg());
    EXPECT(batcher_ready(&b, 1), "epoch 1 has a batch");
    for (int i = 0; i < 2 * PER; i++)
        EXPECT(b.x[i] == 0.1f && b.y[i] == -0.1f, "pixel %d: %g %g (another epoch's image?)", i, b.x[i],
               b.y[i]);
    batcher_pop(&b, 1);
    EXPECT(batcher_complete(&b, 1) && batcher_next(&b, 1) == 2, "epoch 1 complete, then 2");
    batcher_close(&b, 1);
    EXPECT(add(&b, 2, 1, -0.2f) == 1 && add(&b, 2, 1, -0.2f) == 1 && batcher_ready(&b, 2), "epoch 2's batch");
    EXPECT(b.x[0] == 0.2f && b.y[0] == -0.2f, "epoch 2's own images");
    batcher_pop(&b, 2);
    EXPECT(b.queued_bytes == 0, "%zu bytes still counted", b.queued_bytes);
    batcher_free(&b);
    return 0;
}

static int test_counts_and_bounds(void)
{
    batcher b;
    batcher_init(&b, 2, 3 * PER * sizeof(float));
    EXPECT(batcher_announce(&b, 1, 1) == 0, "%s", err_msg());
    EXPECT(batcher_announce(&b, 1, 3) < 0 && strstr(err_msg(), "announced with 1 pairs and with 3"), "%s",
           err_msg());
    EXPECT(add(&b, 1, 0, 0) == 1, "%s", err_msg());
    EXPECT(add(&b, 1, 0, 0) < 0 && strstr(err_msg(), "more young images than the 1 pairs"), "%s", err_msg());
    EXPECT(add(&b, 2, 0, 0) == 1 && add(&b, 3, 0, 0) == 1, "%s", err_msg());
    EXPECT(add(&b, 3, 1, 0) < 0 && strstr(err_msg(), "MiB of images queued"), "over the bound: %s",
           err_msg());
    batcher_close(&b, 2);
    EXPECT(add(&b, 3, 1, 0) == 1, "room again after a close: %s", err_msg());
    EXPECT(b.dropped == 1 && b.images[0] == 3 && b.images[1] == 1, "dropped %ld, images %ld %ld", b.dropped,
           b.images[0], b.images[1]);
    batcher_free(&b);
    return 0;
}

CHECK_MAIN(T(test_epochs_interleaved), T(test_counts_and_bounds))
