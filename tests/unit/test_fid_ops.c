/*
 * test_fid_ops: the FID Inception ops (lib/backend/layers-pool.h) on the CPU backend
 * against PyTorch (fixture from tests/py/ref_fid_ops.py), NumPy's
 * RandomState.choice as KID draws it, and the .npy reader/writer.
 * Tolerances (fp32): conv atol 1e-5 + rtol 1e-4 (GEMM summation order);
 * pools 1e-6 (same float sums as PyTorch's CPU kernel, in the same order);
 * resizes 5e-7 on [-1,1] (the same weights; PyTorch's vectorised loop
 * may round the blend differently, 1-2 ulp).  The choices are integers and must be equal.
 */
#include "check.h"
#include "fixture.h"

#include "backend/backend.h"
#include "base/err.h"
#include "fid/fid-stats.h"
#include "backend/layers-pool.h"
#include "format/npy.h"
#include "base/rng.h"

static struct fixture *fx;
static int fx_skip, fx_tried;
static backend_t be;

static int need_fixture(void)
{
    if (!fx_tried) {
        fx_tried = 1;
        fx = fixture_from_python("ref_fid_ops.py", &fx_skip);
        be = backend_cpu_init();
    }
    if (fx_skip)
        return FX_SKIP;
    return fx && be ? 0 : 1;
}

static const struct fx_tensor *get(const char *pre, const char *what)
{
    char name[128];
    snprintf(name, sizeof name, "%s.%s", pre, what);
    return fixture_get(fx, name);
}

/* Each case writes its output into channels [1, 1+cout) of a wider buffer, so the output
 * batch stride and the untouched channels are checked too. */
static int conv_case(const char *name, int n, int ci, int h, int w, int co, int kh, int kw, int s, int ph,
                     int pw)
{
    char pre[64];
    snprintf(pre, sizeof pre, "conv.%s", name);
    const struct fx_tensor *x = get(pre, "x"), *wt = get(pre, "w"), *b = get(pre, "b"), *y = get(pre, "y");
    EXPECT(x && wt && b && y, "missing fixture tensors");
    struct conv_ex_shape sh;
    EXPECT(conv_ex_shape_init(&sh, n, ci, h, w, co, kh, kw, s, s, ph, pw) == 0, "%s", err_msg());
    long hwo = (long)sh.hout * sh.wout, per = (co + 2) * hwo;
    EXPECT(n * co * hwo == y->n, "%s: output size", name);
    sh.out_bstride = per;
    sh.relu = 1;
    float *out = malloc(sizeof(float) * n * per), *got = malloc(sizeof(float) * y->n);
    for (long i = 0; i < n * per; i++)
        out[i] = -7.0f;
    size_t wsb = conv_ex_workspace_bytes(be, &sh);
    float *ws = wsb ? backend_alloc(be, wsb) : NULL;
    EXPECT(conv_ex_forward(be, out + hwo, x->data, wt->data, b->data, &sh, ws) == 0, "%s", err_msg());
    int bad = 0;
    for (int i = 0; i < n; i++) {
        memcpy(got + (long)i * co * hwo, out + i * per + hwo, sizeof(float) * co * hwo);
        for (long j = 0; j < hwo; j++)
            bad += out[i * per + j] != -7.0f || out[i * per + (co + 1) * hwo + j] != -7.0f;
    }
    int rc = check_tensor(pre, got, y->data, y->n, 1e-5, 1e-4) || bad;
    if (bad)
        printf("# %s: %d floats outside the output slice were written\n", pre, bad);
    backend_dealloc(be, ws);
    free(out);
    free(got);
    return rc;
}

static int test_conv_ex(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    rc |= conv_case("k1x7", 2, 5, 9, 11, 4, 1, 7, 1, 0, 3);
    rc |= conv_case("k7x1", 2, 5, 9, 11, 6, 7, 1, 1, 3, 0);
    rc |= conv_case("k3s2", 2, 4, 11, 9, 5, 3, 3, 2, 0, 0);
    rc |= conv_case("k1x3", 1, 8, 8, 8, 3, 1, 3, 1, 0, 1);
    rc |= conv_case("k1", 3, 7, 6, 5, 4, 1, 1, 1, 0, 0);
    rc |= conv_case("k5p2", 2, 3, 7, 7, 4, 5, 5, 1, 2, 2);
    return rc;
}

static int pool_case(const char *name, int n, int c, int h, int w, int k, int s, int p, enum pool_kind kind)
{
    char pre[64];
    snprintf(pre, sizeof pre, "pool.%s", name);
    const struct fx_tensor *x = get(pre, "x"), *y = get(pre, "y");
    EXPECT(x && y, "missing fixture tensors");
    struct pool_shape sh;
    EXPECT(pool2d_shape_init(&sh, n, c, h, w, k, s, p, kind) == 0, "%s", err_msg());
    EXPECT((long)n * c * sh.hout * sh.wout == y->n, "%s: output size", name);
    float *out = calloc(y->n, sizeof(float));
    EXPECT(pool2d_forward(be, out, x->data, &sh) == 0, "%s", err_msg());
    int rc = check_tensor(pre, out, y->data, y->n, 1e-6, 0);
    free(out);
    return rc;
}

static int test_pool2d(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    rc |= pool_case("max3s2", 2, 3, 9, 8, 3, 2, 0, POOL_MAX);
    rc |= pool_case("max3s1p1", 2, 3, 7, 6, 3, 1, 1, POOL_MAX);
    rc |= pool_case("avg3s1p1", 2, 3, 7, 6, 3, 1, 1, POOL_AVG);
    rc |= pool_case("avgx3s1p1", 2, 3, 7, 6, 3, 1, 1, POOL_AVG_EXCL_PAD);
    rc |= pool_case("avgx3s2p1", 1, 2, 8, 7, 3, 2, 1, POOL_AVG_EXCL_PAD);
    return rc;
}

static int resize_case(const char *name, int planes, int h, int w, int ho, int wo, int tf1)
{
    char pre[64];
    snprintf(pre, sizeof pre, "resize.%s", name);
    const struct fx_tensor *x = get(pre, "x"), *y = get(pre, "y");
    EXPECT(x && y && y->n == (long)planes * ho * wo, "missing or mis-sized fixture tensors");
    float *out = calloc(y->n, sizeof(float));
    int r =
        tf1 ? resize_bilinear_forward(be, out, x->data, planes, h, w, ho, wo, RESIZE_TF1, 0.0078125f, -1.0f)
            : resize_bilinear_forward(be, out, x->data, planes, h, w, ho, wo, RESIZE_HALF_PIXEL, 2.0f, -1.0f);
    EXPECT(r == 0, "%s", err_msg());
    int rc = check_tensor(pre, out, y->data, y->n, 5e-7, 0);
    free(out);
    return rc;
}

static int test_resize(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    rc |= resize_case("up_pf", 3, 48, 40, 299, 299, 0);
    rc |= resize_case("down_pf", 3, 320, 301, 299, 299, 0);
    rc |= resize_case("same_pf", 2, 299, 299, 299, 299, 0);
    rc |= resize_case("up_tf1", 3, 48, 40, 299, 299, 1);
    rc |= resize_case("down_tf1", 3, 320, 301, 299, 299, 1);
    return rc;
}

static int test_numpy_choice(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    const int cases[][2] = {{10, 10}, {1000, 7}, {70000, 5}};
    for (int c = 0; c < 3; c++) {
        int n = cases[c][0], m = cases[c][1];
        char name[64];
        snprintf(name, sizeof name, "choice.%d.%d", n, m);
        const struct fx_tensor *t = fixture_get(fx, name);
        EXPECT(t && t->n == 2 * m, "%s missing", name);
        int64_t *perm = malloc(sizeof(int64_t) * m), *scratch = malloc(sizeof(int64_t) * n);
        rng r;
        rng_seed(&r, 2020);
        for (int k = 0; k < 2; k++) {
            fid_numpy_choice(&r, n, m, perm, scratch);
            for (int i = 0; i < m; i++)
                EXPECT(perm[i] == (int64_t)t->data[k * m + i], "%s draw %d [%d]: %lld vs %g", name, k, i,
                       (long long)perm[i], (double)t->data[k * m + i]);
        }
        free(perm);
        free(scratch);
    }
    return 0;
}

/* .npy: our writer's output parses back; a Fortran-order float32 array and a version-2
 * header parse; malformed headers are refused. */
static int test_npy(void)
{
    double v[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {2, 3};
    uint8_t *buf;
    size_t len;
    EXPECT(npy_format(&buf, &len, v, shape, 2) == 0, "%s", err_msg());
    EXPECT((10 + (buf[8] | buf[9] << 8)) % 64 == 0, "data not 64-byte aligned");
    struct npy_array a;
    EXPECT(npy_parse(&a, buf, len, "t") == 0, "%s", err_msg());
    EXPECT(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3 && !memcmp(a.data, v, sizeof v), "round trip");
    npy_array_free(&a);
    free(buf);

    const char hdr[] = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }";
    uint8_t f[256] = "\x93NUMPY\x02\x00";
    uint32_t hl = sizeof hdr - 1;
    memcpy(f + 8, &hl, 4);
    memcpy(f + 12, hdr, hl);
    float col[6] = {1, 4, 2, 5, 3, 6}; /* column-major [[1,2,3],[4,5,6]] */
    memcpy(f + 12 + hl, col, sizeof col);
    EXPECT(npy_parse(&a, f, 12 + hl + sizeof col, "f") == 0, "%s", err_msg());
    EXPECT(a.ndim == 2 && !memcmp(a.data, v, sizeof v), "fortran order not transposed");
    npy_array_free(&a);

    EXPECT(npy_parse(&a, f, 12 + hl + sizeof col - 4, "short") != 0, "truncated data accepted");
    printf("# %s\n", err_msg());
    memcpy(f + 12, "{'descr': '>f8'", 15);
    EXPECT(npy_parse(&a, f, 12 + hl + sizeof col, "be") != 0, "big-endian accepted");
    printf("# %s\n", err_msg());
    EXPECT(npy_parse(&a, (const uint8_t *)"PK\x03\x04xxxxxxxx", 12, "zip") != 0, "bad magic");
    return 0;
}

static void fixtures_release(void)
{
    fixture_free(fx);
    backend_free(be);
}

FX_MAIN(T(test_conv_ex), T(test_pool2d), T(test_resize), T(test_numpy_choice), T(test_npy))
