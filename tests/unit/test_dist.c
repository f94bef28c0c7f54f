/*
 * test_dist: the share of each batch a data-parallel rank keeps
 * (lib/dist/dist.h), and a plain process being a 1-rank job whose collectives
 * change nothing.  mpirun itself is tested in tests/dist.bats.
 */
#include "check.h"
#include "dist/dist.h"

/* Over N ranks, each pair index of an epoch of `pairs` lands on exactly
 * one rank, in its slice of its global batch, and the incomplete last
 * batch on none; each rank's count is what dist_shard_pairs announces. */
static int test_shard_partition(void)
{
    const int B = 4, pairs = 11; /* 2 complete batches, 3 pairs dropped */
    for (int N = 1; N <= 4; N *= 2) {
        int owner[2][11];
        memset(owner, -1, sizeof owner);
        for (int k = 0; k < N; k++) {
            struct dist_shard s;
            dist_shard_init(&s, k, N, B);
            int64_t announced = dist_shard_pairs(&s, 1, pairs), kept = 0;
            for (int i = 0; i < pairs; i++)
                for (int d = 0; d < 2; d++)
                    if (dist_shard_keep(&s, 1, d)) {
                        EXPECT(owner[d][i] < 0, "pair %d of domain %d kept by ranks %d and %d", i, d,
                               owner[d][i], k);
                        owner[d][i] = k;
                        kept += d == 0;
                    }
            EXPECT(kept == announced, "rank %d of %d kept %lld pairs, announced %lld", k, N, (long long)kept,
                   (long long)announced);
        }
        for (int i = 0; i < pairs; i++) {
            int want = i < 8 ? (i % B) / (B / N) : -1;
            EXPECT(owner[0][i] == want && owner[1][i] == want, "N=%d pair %d: rank %d/%d, want %d", N, i,
                   owner[0][i], owner[1][i], want);
        }
    }
    return 0;
}

/* A new epoch starts the counts again. */
static int test_shard_epochs(void)
{
    struct dist_shard s;
    dist_shard_init(&s, 1, 2, 2);
    dist_shard_pairs(&s, 1, 2);
    EXPECT(!dist_shard_keep(&s, 1, 0) && dist_shard_keep(&s, 1, 0), "epoch 1: rank 1 takes pair 1");
    dist_shard_pairs(&s, 2, 2);
    EXPECT(!dist_shard_keep(&s, 2, 0) && dist_shard_keep(&s, 2, 0), "epoch 2: rank 1 takes pair 1 again");
    return 0;
}

/* Without mpirun: rank 0 of 1; averaging, agreeing and comparing are
 * no-ops (the plain trainer's path, bit for bit). */
static int test_single_process(void)
{
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMI_SIZE");
    EXPECT(dist_init() == 0, "dist_init");
    EXPECT(dist_rank() == 0 && dist_size() == 1 && !dist_on(), "rank %d of %d", dist_rank(), dist_size());
    double v[2] = {1.5, -2};
    EXPECT(dist_mean(v, 2) == 0 && v[0] == 1.5 && v[1] == -2, "dist_mean changed the values");
    int stop = 0;
    EXPECT(dist_agree(1, 1, 1, &stop) == 1, "a batch to train");
    EXPECT(dist_agree(0, 1, 1, &stop) == 0, "the end of the input");
    stop = 1;
    EXPECT(dist_agree(1, 1, 1, &stop) == 0, "a stop signal");
    dist_finish();
    return 0;
}

CHECK_MAIN(T(test_shard_partition), T(test_shard_epochs), T(test_single_process))
