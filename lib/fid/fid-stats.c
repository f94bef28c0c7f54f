/*
 * fid-stats: streaming statistics, FID through symmetric eigensolvers, KID
 * with torch-fidelity's subset sampling, and the statistics files.  See
 * fid-stats.h.
 */
#include "fid-stats.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "format/npy.h"
#include "base/rng.h"
#include "format/safetensors.h"

#define ACC_ROWS       64    /* rows per dsyrk update */
#define KID_WHOLE_GRAM 1.6e8 /* doubles (1.3 GB) up to which the Gram matrices are kept whole */

struct fid_acc {
    int d, keep;
    int64_t n;
    double *shift; /* [d] the first row */
    double *sum;   /* [d] sum of (x - shift) */
    double *cross; /* [d,d] upper triangle of sum (x-shift)(x-shift)^T */
    double *rows;  /* [ACC_ROWS,d] staging */
    float *feat;   /* [cap,d] kept features */
    int64_t cap;
};

void fid_stats_free(struct fid_stats *s)
{
    if (!s)
        return;
    free(s->mu);
    free(s->sigma);
    free(s->feat);
    memset(s, 0, sizeof *s);
}

struct fid_acc *fid_acc_new(int d, int keep_features)
{
    struct fid_acc *a = calloc(1, sizeof *a);
    if (!a || d < 1) {
        free(a);
        err_set("fid_acc_new: bad dimension %d or out of memory", d);
        return NULL;
    }
    a->d = d;
    a->keep = keep_features;
    a->shift = calloc((size_t)d, sizeof(double));
    a->sum = calloc((size_t)d, sizeof(double));
    a->cross = calloc((size_t)d * d, sizeof(double));
    a->rows = malloc((size_t)ACC_ROWS * d * sizeof(double));
    if (!a->shift || !a->sum || !a->cross || !a->rows) {
        fid_acc_free(a);
        err_set("fid_acc_new: out of memory for d = %d", d);
        return NULL;
    }
    return a;
}

void fid_acc_free(struct fid_acc *a)
{
    if (!a)
        return;
    free(a->shift);
    free(a->sum);
    free(a->cross);
    free(a->rows);
    free(a->feat);
    free(a);
}

int64_t fid_acc_count(const struct fid_acc *a)
{
    return a->n;
}

int fid_acc_add(struct fid_acc *a, const float *feats, int n)
{
    int d = a->d;
    if (n < 0)
        return err_set("fid_acc_add: %d rows", n);
    if (a->keep && a->n + n > a->cap) {
        int64_t cap = a->cap ? a->cap : 256;
        while (cap < a->n + n)
            cap *= 2;
        float *f = realloc(a->feat, (size_t)cap * d * sizeof(float));
        if (!f)
            return err_set("fid: out of memory keeping %lld features", (long long)cap);
        a->feat = f;
        a->cap = cap;
    }
    if (a->keep)
        memcpy(a->feat + a->n * d, feats, (size_t)n * d * sizeof(float));
    if (a->n == 0 && n > 0)
        for (int j = 0; j < d; j++)
            a->shift[j] = feats[j];
    for (int r0 = 0; r0 < n; r0 += ACC_ROWS) {
        int b = n - r0 < ACC_ROWS ? n - r0 : ACC_ROWS;
        for (int i = 0; i < b; i++)
            for (int j = 0; j < d; j++) {
                double v = (double)feats[(long)(r0 + i) * d + j] - a->shift[j];
                a->rows[(long)i * d + j] = v;
                a->sum[j] += v;
            }
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, b, 1.0, a->rows, d, 1.0, a->cross, d);
    }
    a->n += n;
    return 0;
}

int fid_acc_finish(struct fid_acc *a, struct fid_stats *out)
{
    memset(out, 0, sizeof *out);
    int d = a->d;
    int64_t n = a->n;
    if (n < 2)
        return err_set("%lld image%s: a covariance needs at least 2", (long long)n, n == 1 ? "" : "s");
    out->d = d;
    out->n = n;
    out->mu = malloc((size_t)d * sizeof(double));
    out->sigma = malloc((size_t)d * d * sizeof(double));
    if (!out->mu || !out->sigma) {
        fid_stats_free(out);
        return err_set("fid: out of memory");
    }
    for (int j = 0; j < d; j++) {
        double m = a->sum[j] / (double)n;
        out->mu[j] = a->shift[j] + m;
    }
    for (int i = 0; i < d; i++) {
        double mi = a->sum[i] / (double)n;
        for (int j = i; j < d; j++) {
            double v =
                (a->cross[(long)i * d + j] - (double)n * mi * (a->sum[j] / (double)n)) / (double)(n - 1);
            out->sigma[(long)i * d + j] = out->sigma[(long)j * d + i] = v;
        }
    }
    if (a->keep) {
        out->feat = a->feat;
        a->feat = NULL;
        a->cap = 0;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// FID

/* Largest eigenvalue magnitude times d*eps: smaller ones are rounding noise. */
static double noise_floor(const double *w, int d)
{
    double mx = 0;
    for (int i = 0; i < d; i++)
        if (fabs(w[i]) > mx)
            mx = fabs(w[i]);
    return mx * d * DBL_EPSILON;
}

/* tr sqrt(S1 S2).  With S1 = V L V^T and U = V_r L_r^(1/2) over the r eigenvalues above the
 * noise floor, S1 = U U^T and the nonzero eigenvalues of S1 S2 are those of the r x r
 * symmetric M = U^T S2 U; so a singular S1 (few images) costs an r x r problem only. */
static int trace_sqrt(const double *s1, const double *s2, int d, double *out)
{
    size_t dd = (size_t)d * d;
    double *a = malloc(dd * sizeof(double)), *u = malloc(dd * sizeof(double)),
           *t = malloc(dd * sizeof(double)), *w = malloc((size_t)d * sizeof(double));
    lapack_int *supp = malloc((size_t)2 * d * sizeof *supp), r = 0;
    int rc = -1;
    if (!a || !u || !t || !w || !supp) {
        err_set("fid: out of memory for %d x %d matrices", d, d);
        goto out;
    }
    double tr = 0;
    for (int i = 0; i < d; i++)
        tr += s1[(size_t)i * d + i];
    *out = 0;
    if (!(tr > 0)) { /* S1 = 0: every image alike */
        rc = 0;
        goto out;
    }
    /* eigenpairs above tr*d*eps (>= the largest eigenvalue's noise floor), at most tr */
    memcpy(a, s1, dd * sizeof(double));
    lapack_int info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'V', 'V', 'U', d, a, d, tr * d * DBL_EPSILON, 2 * tr,
                                     0, 0, 0.0, &r, w, u, d, supp);
    if (info != 0) {
        err_set("fid: eigendecomposition of the reference covariance failed (LAPACK %d)", (int)info);
        goto out;
    }
    if (r == 0) {
        rc = 0;
        goto out;
    }
    for (lapack_int k = 0; k < r; k++) {
        double sq = sqrt(w[k]);
        for (int i = 0; i < d; i++)
            u[(size_t)i * d + k] *= sq;
    }
    /* t [d,r] = S2 U; a [r,r] = U^T t */
    cblas_dsymm(CblasRowMajor, CblasLeft, CblasUpper, d, r, 1.0, s2, d, u, d, 0.0, t, r);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, r, d, 1.0, u, d, t, r, 0.0, a, r);
    for (lapack_int i = 0; i < r; i++) /* symmetrise against rounding */
        for (lapack_int j = i + 1; j < r; j++)
            a[(size_t)i * r + j] = 0.5 * (a[(size_t)i * r + j] + a[(size_t)j * r + i]);
    info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', r, a, r, w);
    if (info != 0) {
        err_set("fid: symmetric eigendecomposition failed (LAPACK %d)", (int)info);
        goto out;
    }
    double floor = noise_floor(w, r), sum = 0;
    for (lapack_int k = 0; k < r; k++)
        if (w[k] > floor)
            sum += sqrt(w[k]);
    *out = sum;
    rc = 0;
out:
    free(a);
    free(u);
    free(t);
    free(w);
    free(supp);
    return rc;
}

int fid_distance(const struct fid_stats *a, const struct fid_stats *b, double *out)
{
    int d = a->d;
    if (a->d != b->d)
        return err_set("the statistics have %d and %d dimensions", a->d, b->d);
    double diff2 = 0, tr1 = 0, tr2 = 0, trs;
    for (int i = 0; i < d; i++) {
        double df = a->mu[i] - b->mu[i];
        diff2 += df * df;
        tr1 += a->sigma[(size_t)i * d + i];
        tr2 += b->sigma[(size_t)i * d + i];
    }
    /* Root the lower-rank side: eig(S1 S2) = eig(S2 S1). */
    int swap = b->n > 0 && (a->n == 0 || b->n < a->n);
    /* OpenBLAS runs single-threaded next to the backend's OpenMP (backend-cpu.c); nothing else
     * runs now, so let LAPACK use every core. */
    int threads = openblas_get_num_threads();
    openblas_set_num_threads(omp_get_max_threads());
    int rc = trace_sqrt(swap ? b->sigma : a->sigma, swap ? a->sigma : b->sigma, d, &trs);
    openblas_set_num_threads(threads);
    if (rc)
        return -1;
    *out = diff2 + tr1 + tr2 - 2 * trs;
    return 0;
}

// ----------------------------------------------------------------------------
// KID

/* NumPy's legacy random_interval: a draw in [0, max] by masked rejection. */
static uint32_t np_interval(rng *r, uint32_t max)
{
    if (max == 0)
        return 0;
    uint32_t mask = max;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    uint32_t v;
    while ((v = rng_u32(r) & mask) > max) {
    }
    return v;
}

void fid_numpy_choice(struct rng *r, int64_t n, int64_t m, int64_t *perm, int64_t *scratch)
{
    /* RandomState.choice(n, m, replace=False) = permutation(n)[:m]; permutation
     * shuffles arange(n) with for i in n-1..1: swap(i, random_interval(i)). */
    for (int64_t i = 0; i < n; i++)
        scratch[i] = i;
    for (int64_t i = n - 1; i >= 1; i--) {
        int64_t j = np_interval(r, (uint32_t)i), t = scratch[i];
        scratch[i] = scratch[j];
        scratch[j] = t;
    }
    memcpy(perm, scratch, (size_t)m * sizeof *perm);
}

static inline double kpoly(double dot, double inv_d)
{
    double k = dot * inv_d + 1.0;
    return k * k * k;
}

/* Gram matrix g [na,nb] = fa [na,d] . fb [nb,d]^T in double. */
static double *gram(const float *fa, int64_t na, const float *fb, int64_t nb, int d)
{
    int same = fa == fb;
    double *xa = malloc((size_t)na * d * sizeof(double)),
           *xb = same ? NULL : malloc((size_t)nb * d * sizeof(double)),
           *g = malloc((size_t)na * nb * sizeof(double));
    if (!xa || (!same && !xb) || !g) {
        free(g);
        g = NULL;
        goto out;
    }
    for (int64_t i = 0; i < na * d; i++)
        xa[i] = fa[i];
    for (int64_t i = 0; !same && i < nb * d; i++)
        xb[i] = fb[i];
    if (same)
        xb = xa;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)na, (int)nb, d, 1.0, xa, d, xb, d, 0.0, g,
                (int)nb);
out:
    if (!same)
        free(xb);
    free(xa);
    return g;
}

/* Sum of k over the pairs (ia[i], ib[j]) of g [.,ldg]; without the diagonal i == j when
 * skip_diag. */
static double kernel_sum(const double *g, int64_t ldg, const int64_t *ia, const int64_t *ib, int m,
                         double inv_d, int skip_diag)
{
    double total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (int i = 0; i < m; i++) {
        const double *row = g + ia[i] * ldg;
        double s = 0;
        for (int j = 0; j < m; j++)
            if (!(skip_diag && i == j))
                s += kpoly(row[ib[j]], inv_d);
        total += s;
    }
    return total;
}

int fid_kid(const struct fid_stats *a, const struct fid_stats *b, int subsets, int subset_size, uint32_t seed,
            double *mean, double *std)
{
    int d = a->d, m = subset_size;
    if (!a->feat || !b->feat)
        return err_set("KID needs the features of both sides (statistics saved with --kid)");
    if (a->d != b->d)
        return err_set("the features have %d and %d dimensions", a->d, b->d);
    if (subsets < 1 || m < 2 || m > a->n || m > b->n)
        return err_set("KID subset size %d needs 2 <= size <= both set sizes (%lld, %lld)", m,
                       (long long)a->n, (long long)b->n);
    int64_t nmax = a->n > b->n ? a->n : b->n;
    /* Whole Gram matrices once when they fit (each pair's dot product computed once), else
     * per subset as torch-fidelity does. */
    int whole = (double)nmax * nmax * 3 <= KID_WHOLE_GRAM;
    int64_t *ia = malloc((size_t)m * sizeof *ia), *ib = malloc((size_t)m * sizeof *ib),
            *id = malloc((size_t)m * sizeof *id), *scratch = malloc((size_t)nmax * sizeof *scratch);
    float *fa = whole ? NULL : malloc((size_t)m * d * sizeof(float)),
          *fb = whole ? NULL : malloc((size_t)m * d * sizeof(float));
    double *gaa = whole ? gram(a->feat, a->n, a->feat, a->n, d) : NULL,
           *gbb = whole ? gram(b->feat, b->n, b->feat, b->n, d) : NULL,
           *gab = whole ? gram(a->feat, a->n, b->feat, b->n, d) : NULL,
           *mmd = malloc((size_t)subsets * sizeof *mmd);
    int rc = -1;
    if (!ia || !ib || !id || !scratch || !mmd || (whole && (!gaa || !gbb || !gab)) ||
        (!whole && (!fa || !fb))) {
        err_set("KID: out of memory for the %lld x %lld kernel matrices", (long long)a->n, (long long)b->n);
        goto out;
    }
    rng r;
    rng_seed(&r, seed);
    double inv_d = 1.0 / d, sum = 0;
    for (int s = 0; s < subsets; s++) {
        fid_numpy_choice(&r, a->n, m, ia, scratch);
        fid_numpy_choice(&r, b->n, m, ib, scratch);
        double kxx, kyy, kxy;
        if (whole) {
            kxx = kernel_sum(gaa, a->n, ia, ia, m, inv_d, 1);
            kyy = kernel_sum(gbb, b->n, ib, ib, m, inv_d, 1);
            kxy = kernel_sum(gab, b->n, ia, ib, m, inv_d, 0);
        } else {
            for (int i = 0; i < m; i++) {
                memcpy(fa + (size_t)i * d, a->feat + ia[i] * d, (size_t)d * sizeof(float));
                memcpy(fb + (size_t)i * d, b->feat + ib[i] * d, (size_t)d * sizeof(float));
                id[i] = i;
            }
            double *g;
            if (!(g = gram(fa, m, fa, m, d)))
                goto oom;
            kxx = kernel_sum(g, m, id, id, m, inv_d, 1);
            free(g);
            if (!(g = gram(fb, m, fb, m, d)))
                goto oom;
            kyy = kernel_sum(g, m, id, id, m, inv_d, 1);
            free(g);
            if (!(g = gram(fa, m, fb, m, d)))
                goto oom;
            kxy = kernel_sum(g, m, id, id, m, inv_d, 0);
            free(g);
        }
        mmd[s] = (kxx + kyy) / ((double)m * (m - 1)) - 2 * kxy / ((double)m * m);
        sum += mmd[s];
    }
    double mu = sum / subsets, var = 0;
    for (int s = 0; s < subsets; s++)
        var += (mmd[s] - mu) * (mmd[s] - mu);
    *mean = mu;
    *std = sqrt(var / subsets);
    rc = 0;
    goto out;
oom:
    err_set("KID: out of memory for %d x %d kernel matrices", m, m);
out:
    free(ia);
    free(ib);
    free(id);
    free(fa);
    free(fb);
    free(scratch);
    free(gaa);
    free(gbb);
    free(gab);
    free(mmd);
    return rc;
}

// ----------------------------------------------------------------------------
// files

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static int load_npz(const char *path, struct fid_stats *out)
{
    struct npy_array mu = {0}, sigma = {0};
    if (npz_read(path, "mu", &mu) || npz_read(path, "sigma", &sigma))
        goto bad;
    if (mu.ndim != 1 || mu.shape[0] < 1 || mu.shape[0] > (1 << 16)) {
        err_set("%s: mu has %d dimensions, expected one", path, mu.ndim);
        goto bad;
    }
    if (sigma.ndim != 2 || sigma.shape[0] != mu.shape[0] || sigma.shape[1] != mu.shape[0]) {
        err_set("%s: sigma is not %lld x %lld like mu", path, (long long)mu.shape[0], (long long)mu.shape[0]);
        goto bad;
    }
    out->d = (int)mu.shape[0];
    out->mu = mu.data;
    out->sigma = sigma.data;
    return 0;
bad:
    npy_array_free(&mu);
    npy_array_free(&sigma);
    return -1;
}

static int load_ours(const char *path, struct fid_stats *out)
{
    st_file *f = st_open(path);
    if (!f)
        return -1;
    const st_tensor *mu = st_get(f, "mu"), *sg = mu ? st_get(f, "sigma") : NULL;
    const char *fmt = st_meta(f, "format");
    if (!mu || !sg) {
        err_wrap("not FID statistics (%s or pytorch-fid .npz)", FID_STATS_FORMAT);
        goto bad;
    }
    if (fmt && strcmp(fmt, FID_STATS_FORMAT) != 0) {
        err_set("%s: format '%s', expected '%s'", path, fmt, FID_STATS_FORMAT);
        goto bad;
    }
    if (mu->ndim != 1 || mu->shape[0] < 1 || mu->shape[0] > (1 << 16)) {
        err_set("%s: mu must be one-dimensional", path);
        goto bad;
    }
    int d = (int)mu->shape[0];
    int64_t s1[1] = {d}, s2[2] = {d, d};
    out->d = d;
    out->mu = malloc((size_t)d * sizeof(double));
    out->sigma = malloc((size_t)d * d * sizeof(double));
    if (!out->mu || !out->sigma) {
        err_set("%s: out of memory", path);
        goto bad;
    }
    if (st_read(f, "mu", ST_F64, out->mu, s1, 1) || st_read(f, "sigma", ST_F64, out->sigma, s2, 2))
        goto bad;
    const st_tensor *n = st_get(f, "n");
    if (n && (n->dtype != ST_I64 || n->numel != 1)) {
        err_set("%s: n must be one I64 value", path);
        goto bad;
    }
    if (n)
        memcpy(&out->n, n->data, sizeof out->n);
    const st_tensor *ft = st_get(f, "features");
    if (ft) {
        int64_t sf[2] = {out->n, d};
        out->feat = malloc((size_t)(out->n ? out->n : 1) * d * sizeof(float));
        if (!out->feat || st_read(f, "features", ST_F32, out->feat, sf, 2)) {
            if (out->feat)
                err_wrap("%s", "(features must be [n, d])");
            goto bad;
        }
    }
    const char *conv = st_meta(f, "convention");
    if (conv)
        snprintf(out->convention, sizeof out->convention, "%s", conv);
    st_free(f);
    return 0;
bad:
    st_free(f);
    fid_stats_free(out);
    return -1;
}

int fid_stats_load(const char *path, struct fid_stats *out)
{
    memset(out, 0, sizeof *out);
    return ends_with(path, ".npz") ? load_npz(path, out) : load_ours(path, out);
}

int fid_stats_save(const char *path, const struct fid_stats *s, const char *const *meta_kv)
{
    int64_t s1[1] = {s->d}, s2[2] = {s->d, s->d};
    if (ends_with(path, ".npz")) {
        struct npz_entry e[2] = {{"mu", s->mu, 1, {s->d}}, {"sigma", s->sigma, 2, {s->d, s->d}}};
        return npz_write(path, e, 2);
    }
    st_writer *w = st_writer_new();
    int64_t sf[2] = {s->n, s->d};
    int rc = !w || st_writer_meta(w, "format", FID_STATS_FORMAT) ||
             st_writer_meta(w, "format_version", "1") || st_writer_add(w, "mu", ST_F64, s1, 1, s->mu) ||
             st_writer_add(w, "sigma", ST_F64, s2, 2, s->sigma) ||
             st_writer_add(w, "n", ST_I64, NULL, 0, &s->n) ||
             (s->feat && st_writer_add(w, "features", ST_F32, sf, 2, s->feat));
    for (int i = 0; !rc && meta_kv && meta_kv[i] && meta_kv[i + 1]; i += 2)
        rc = st_writer_meta(w, meta_kv[i], meta_kv[i + 1]) != 0;
    rc = rc || st_writer_save(w, path);
    if (!w)
        err_set("fid: out of memory");
    st_writer_free(w);
    return rc ? -1 : 0;
}
