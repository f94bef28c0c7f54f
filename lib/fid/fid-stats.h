/*
 * fid-stats: feature statistics, the Fréchet distance (FID) and the kernel
 * inception distance (KID), in double precision (docs/fid-inception.md §4-5).
 *
 *   struct fid_acc *acc = fid_acc_new(2048, keep_features);
 *   fid_acc_add(acc, feats, n);               // any number of times
 *   struct fid_stats s;
 *   fid_acc_finish(acc, &s);                  // mu, unbiased sigma (n >= 2)
 *   fid_distance(&ref, &s, &fid);
 *   fid_kid(&ref, &s, 100, 1000, 2020, &mean, &std);   // needs features on both
 *   fid_stats_free(&s); fid_acc_free(acc);
 *
 * Streaming: the accumulator keeps sum(x-k) and sum((x-k)(x-k)^T) (dsyrk,
 * upper triangle) shifted by the first feature vector k, so memory is
 * O(d^2) whatever the number of images and the covariance does not lose
 * digits to a large mean.  Features themselves are kept only when asked
 * (KID needs them).
 *
 * FID = |mu1-mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2), with the trace term
 * from symmetric eigensolvers only (LAPACKE dsyevd): R = sqrt(S1) from the
 * eigendecomposition of S1, then tr sqrt(S1 S2) = sum sqrt(eig(R S2 R)).
 * Eigenvalues below d*DBL_EPSILON times the largest (rounding noise of a
 * singular covariance: fewer images than dimensions) count as 0, so the
 * result stays finite and does not pick up sqrt(noise) from each null
 * direction.
 *
 * KID: torch-fidelity's defaults - polynomial kernel (x.y/d + 1)^3, `subsets`
 * subsets of `subset_size` rows drawn without replacement with NumPy's
 * RandomState(seed).choice(n, m, replace=False) (reproduced exactly: MT19937
 * + the legacy shuffle), unbiased MMD^2 per subset; mean and population std.
 *
 * Statistics files (fid_stats_save / fid_stats_load):
 *   - ours: safetensors with mu [d] F64, sigma [d,d] F64, n [] I64 and, when
 *     kept, features [n,d] F32; metadata format = "aging-fid-stats",
 *     format_version = "1", plus what the caller adds (convention, weights);
 *   - a path ending in .npz: pytorch-fid's np.savez(mu=, sigma=) (no n, no
 *     features; n reads back as 0).
 */
#pragma once

#include <stdint.h>

#define FID_STATS_FORMAT "aging-fid-stats"

struct fid_stats {
    int d;
    int64_t n;           /* images behind the statistics (0: unknown, e.g. from .npz) */
    double *mu;          /* [d] */
    double *sigma;       /* [d,d], symmetric */
    float *feat;         /* [n,d] or NULL */
    char convention[32]; /* metadata "convention" of a loaded file, "" if none */
};

/* Frees the arrays (not s itself); NULL-safe, s is zeroed. */
void fid_stats_free(struct fid_stats *s);

struct fid_acc;
/* An empty accumulator of d-dimensional features.  Caller frees. */
struct fid_acc *fid_acc_new(int d, int keep_features);
void fid_acc_free(struct fid_acc *a); /* NULL-safe */
/* Add n rows of feats [n,d]. */
int fid_acc_add(struct fid_acc *a, const float *feats, int n);
int64_t fid_acc_count(const struct fid_acc *a);
/* Mean and unbiased covariance of everything added; the kept features move
 * into out (the accumulator keeps none afterwards).  Needs n >= 2.  out is
 * the caller's (fid_stats_free). */
int fid_acc_finish(struct fid_acc *a, struct fid_stats *out);

/* Fréchet distance between two statistics of the same dimension. */
int fid_distance(const struct fid_stats *a, const struct fid_stats *b, double *out);
/* KID between the kept features of a and b (subset_size <= both n). */
int fid_kid(const struct fid_stats *a, const struct fid_stats *b, int subsets, int subset_size, uint32_t seed,
            double *mean, double *std);
/* perm[0..m) = numpy.random.RandomState(state).choice(n, m, replace=False)
 * continuing the generator r (lib/base/rng.h: MT19937 seeded like NumPy's). */
struct rng;
void fid_numpy_choice(struct rng *r, int64_t n, int64_t m, int64_t *perm, int64_t *scratch);

/* Load ours or .npz (by extension).  NULL-terminated meta_kv pairs are
 * written as metadata by fid_stats_save (ignored for .npz). */
int fid_stats_load(const char *path, struct fid_stats *out);
int fid_stats_save(const char *path, const struct fid_stats *s, const char *const *meta_kv);
