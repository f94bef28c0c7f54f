/*
 * test_layers: every layer's forward and backward on the CPU backend against
 * PyTorch (fixture written by tests/py/ref_layers.py with /usr/bin/python3).
 * Tolerances, all fp32: outputs atol 1e-5 + rtol 1e-4 (different summation
 * orders in GEMM/reductions); gradients that are sums over a whole batch
 * (dw, db, dgamma, dbeta) atol 1e-4 + rtol 1e-4 (sums of ~1e2-1e3 products
 * of O(1) values, float accumulation in both libraries).
 */
#include "check.h"
#include "fixture.h"

#include "backend/backend.h"
#include "base/err.h"
#include "backend/layers.h"

static struct fixture *fx;
static int fx_skip, fx_tried;
static backend_t be;

static void fixtures_release(void)
{
    fixture_free(fx);
    backend_free(be);
}

/* 0: fixture ready; FX_SKIP: no torch; 1: failure */
static int need_fixture(void)
{
    if (!fx_tried) {
        fx_tried = 1;
        fx = fixture_from_python("ref_layers.py", &fx_skip);
        be = backend_cpu_init();
    }
    if (fx_skip)
        return FX_SKIP;
    return fx && be ? 0 : 1;
}

#define ATOL     1e-5
#define RTOL     1e-4
#define ATOL_SUM 1e-4

static float *zeros(long n)
{
    return calloc(n ? n : 1, sizeof(float));
}

static int cmp(const char *pre, const char *what, const float *got, double atol)
{
    char label[128];
    snprintf(label, sizeof label, "%s.%s", pre, what);
    const float *want = fxd(fx, pre, what);
    if (!want)
        return 1;
    return check_tensor(label, got, want, fxn(fx, pre, what), atol, RTOL);
}

static int conv_case(const char *pre, int n, int ci, int h, int w, int co, int k, int s, int p)
{
    struct conv_shape sh;
    EXPECT(conv2d_shape(&sh, n, ci, h, w, co, k, s, p) == 0, "%s", err_msg());
    long nout = (long)n * co * sh.hout * sh.wout;
    EXPECT(nout == fxn(fx, pre, "out"), "%s: output size %ld vs %ld", pre, nout, fxn(fx, pre, "out"));
    float *out = zeros(nout), *dx = zeros((long)n * ci * h * w), *dw = zeros((long)co * ci * k * k),
          *db = zeros(co);
    const float *x = fxd(fx, pre, "x"), *wt = fxd(fx, pre, "weight"), *b = fxd(fx, pre, "bias");
    int bad = conv2d_forward(be, out, x, wt, b, &sh);
    bad |= conv2d_backward(be, dx, dw, db, fxd(fx, pre, "g"), x, wt, &sh);
    bad |= cmp(pre, "out", out, ATOL) | cmp(pre, "dx", dx, ATOL) | cmp(pre, "dweight", dw, ATOL_SUM) |
           cmp(pre, "dbias", db, ATOL_SUM);
    /* parameter gradients accumulate: a second backward doubles them */
    bad |= conv2d_backward(be, NULL, dw, db, fxd(fx, pre, "g"), x, wt, &sh);
    for (long i = 0; i < co; i++)
        db[i] *= 0.5f;
    const float *want = fxd(fx, pre, "dbias");
    for (long i = 0; i < co; i++)
        bad |= fabsf(db[i] - want[i]) > 1e-4f + 1e-4f * fabsf(want[i]);
    free(out), free(dx), free(dw), free(db);
    return bad != 0;
}

static int test_conv2d(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    return conv_case("conv3", 2, 3, 9, 8, 4, 3, 1, 1) | conv_case("conv4s2", 2, 5, 10, 9, 6, 4, 2, 1) |
           conv_case("conv7", 1, 3, 12, 11, 5, 7, 1, 0) | conv_case("conv1", 2, 6, 5, 4, 3, 1, 1, 0) |
           conv_case("conv3s2", 2, 4, 9, 10, 8, 3, 2, 1) | conv_case("conv4s1", 2, 6, 6, 5, 1, 4, 1, 1);
}

static int test_convt2d(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    struct conv_shape sh;
    EXPECT(convt2d_shape(&sh, 2, 4, 5, 6, 3, 3, 2, 1, 1) == 0, "%s", err_msg());
    EXPECT(sh.hout == 10 && sh.wout == 12, "convt output %dx%d", sh.hout, sh.wout);
    const char *pre = "convt";
    float *out = zeros(2 * 3 * 10 * 12), *dx = zeros(2 * 4 * 5 * 6), *dw = zeros(4 * 3 * 9), *db = zeros(3);
    const float *x = fxd(fx, pre, "x"), *wt = fxd(fx, pre, "weight");
    int bad = convt2d_forward(be, out, x, wt, fxd(fx, pre, "bias"), &sh);
    bad |= convt2d_backward(be, dx, dw, db, fxd(fx, pre, "g"), x, wt, &sh);
    bad |= cmp(pre, "out", out, ATOL) | cmp(pre, "dx", dx, ATOL) | cmp(pre, "dweight", dw, ATOL_SUM) |
           cmp(pre, "dbias", db, ATOL_SUM);
    free(out), free(dx), free(dw), free(db);
    return bad != 0;
}

/* 16-bit convolutions (CPU emulation) against PyTorch's float computation on
 * the rounded operands.  The float sums run in another order, so a result
 * may land one 16-bit step away: tolerance one ulp of the type (2^-8 bf16,
 * 2^-11 fp16 relative), plus a little absolute room near zero.  Since a
 * float result that skipped the rounding would also be within that, at
 * least 99% of the values must match exactly. */
static int half_case(const char *pre, enum backend_precision p, const struct conv_shape *sh, int transposed)
{
    char hp[64];
    snprintf(hp, sizeof hp, "%s.%s", pre, backend_precision_name(p));
    long nin = (long)sh->n * sh->cin * sh->h * sh->w, nout = (long)sh->n * sh->cout * sh->hout * sh->wout,
         nw = (long)sh->cin * sh->cout * sh->k * sh->k;
    float *out = zeros(nout), *dx = zeros(nin), *dw = zeros(nw);
    const float *x = fxd(fx, pre, "x"), *wt = fxd(fx, pre, "weight"), *b = fxd(fx, pre, "bias"),
                *g = fxd(fx, pre, "g");
    double rtol = p == BACKEND_BF16 ? 1.0 / 256 : 1.0 / 2048;
    int bad = backend_set_precision(be, p);
    if (transposed)
        bad |= convt2d_forward(be, out, x, wt, b, sh) | convt2d_backward(be, dx, dw, NULL, g, x, wt, sh);
    else
        bad |= conv2d_forward(be, out, x, wt, b, sh) | conv2d_backward(be, dx, dw, NULL, g, x, wt, sh);
    backend_set_precision(be, BACKEND_FP32);
    const char *what[3] = {"out", "dx", "dweight"};
    float *got[3] = {out, dx, dw};
    for (int i = 0; i < 3; i++) {
        char label[96];
        snprintf(label, sizeof label, "%s.%s", hp, what[i]);
        const float *want = fxd(fx, hp, what[i]);
        long n = fxn(fx, hp, what[i]), same = 0;
        bad |= !want || check_tensor(label, got[i], want, n, 1e-6, rtol);
        for (long j = 0; want && j < n; j++)
            same += got[i][j] == want[j];
        if (same < n - n / 100) {
            printf("# %s: only %ld of %ld values exact\n", label, same, n);
            bad = 1;
        }
    }
    free(out), free(dx), free(dw);
    return bad != 0;
}

static int test_conv_16bit(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    struct conv_shape c3, c3s2, ct;
    EXPECT(conv2d_shape(&c3, 2, 3, 9, 8, 4, 3, 1, 1) == 0 &&
               conv2d_shape(&c3s2, 2, 4, 9, 10, 8, 3, 2, 1) == 0 &&
               convt2d_shape(&ct, 2, 4, 5, 6, 3, 3, 2, 1, 1) == 0,
           "%s", err_msg());
    int bad = 0;
    for (int p = BACKEND_BF16; p <= BACKEND_FP16; p++)
        bad |=
            half_case("conv3", p, &c3, 0) | half_case("conv3s2", p, &c3s2, 0) | half_case("convt", p, &ct, 1);
    return bad;
}

static int pad_case(const char *pre, int n, int c, int h, int w, int p)
{
    long nout = (long)n * c * (h + 2 * p) * (w + 2 * p);
    float *out = zeros(nout), *dx = zeros((long)n * c * h * w);
    /* exact: padding only copies, its backward adds at most 4 values */
    int bad = reflpad_forward(be, out, fxd(fx, pre, "x"), n * c, h, w, p);
    bad |= reflpad_backward(be, dx, fxd(fx, pre, "g"), n * c, h, w, p);
    bad |= cmp(pre, "out", out, 0) | cmp(pre, "dx", dx, ATOL);
    free(out), free(dx);
    return bad != 0;
}

static int test_reflpad(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    return pad_case("pad3", 2, 3, 8, 7, 3) | pad_case("pad1", 2, 2, 4, 5, 1);
}

static int bn_case(const char *pre, int training)
{
    const int n = 3, c = 4, hw = 30;
    long nel = (long)n * c * hw;
    float *out = zeros(nel), *dx = zeros(nel), *dg = zeros(c), *dbt = zeros(c), mean[4], rstd[4], rm[4],
          rv[4];
    memcpy(rm, fxd(fx, pre, "before.running_mean"), sizeof rm);
    memcpy(rv, fxd(fx, pre, "before.running_var"), sizeof rv);
    const float *x = fxd(fx, pre, "x"), *gam = fxd(fx, pre, "weight");
    int bad = batchnorm_forward(be, out, mean, rstd, x, gam, fxd(fx, pre, "bias"), rm, rv, n, c, hw, training,
                                BN_MOMENTUM, BN_EPS);
    bad |= batchnorm_backward(be, dx, dg, dbt, fxd(fx, pre, "g"), x, mean, rstd, gam, n, c, hw, training);
    /* running stats: one float update of a double-computed statistic */
    bad |= cmp(pre, "out", out, ATOL) | cmp(pre, "dx", dx, ATOL) | cmp(pre, "dweight", dg, ATOL_SUM) |
           cmp(pre, "dbias", dbt, ATOL_SUM) | cmp(pre, "after.running_mean", rm, 1e-6) |
           cmp(pre, "after.running_var", rv, 1e-6);
    free(out), free(dx), free(dg), free(dbt);
    return bad != 0;
}

static int test_batchnorm(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    return bn_case("bntrain", 1) | bn_case("bneval", 0);
}

static int test_instnorm(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    const int planes = 6, hw = 30;
    float *out = zeros(planes * hw), *dx = zeros(planes * hw), mean[6], rstd[6];
    const float *x = fxd(fx, "inorm", "x");
    int bad = instnorm_forward(be, out, mean, rstd, x, planes, hw, BN_EPS);
    bad |= instnorm_backward(be, dx, fxd(fx, "inorm", "g"), x, mean, rstd, planes, hw);
    bad |= cmp("inorm", "out", out, ATOL) | cmp("inorm", "dx", dx, ATOL);
    free(out), free(dx);
    return bad != 0;
}

static int test_activations(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    const char *names[] = {"relu", "lrelu", "tanh"};
    const enum act_kind kinds[] = {ACT_RELU, ACT_LRELU, ACT_TANH};
    int bad = 0;
    for (int k = 0; k < 3; k++) {
        long n = fxn(fx, names[k], "x");
        float *y = zeros(n), *dx = zeros(n);
        memcpy(y, fxd(fx, names[k], "x"), n * sizeof(float));
        memcpy(dx, fxd(fx, names[k], "g"), n * sizeof(float));
        /* in place, as the models run them; tanhf vs torch's vectorised tanh: ~1 ulp */
        bad |= act_forward(be, y, y, n, kinds[k]) | act_backward(be, dx, dx, y, n, kinds[k]);
        bad |= cmp(names[k], "out", y, 1e-6) | cmp(names[k], "dx", dx, 1e-6);
        free(y), free(dx);
    }
    return bad != 0;
}

static int test_mean(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    float out[2], dx[60];
    int bad = mean_forward(be, out, fxd(fx, "mean", "x"), 2, 30);
    bad |= mean_backward(be, dx, fxd(fx, "mean", "g"), 2, 30);
    bad |= cmp("mean", "out", out, 1e-6) | cmp("mean", "dx", dx, 1e-7);
    return bad != 0;
}

static int test_losses(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    const char *names[] = {"mse", "l1"};
    const enum loss_kind kinds[] = {LOSS_MSE, LOSS_L1};
    int bad = 0;
    for (int k = 0; k < 2; k++) {
        char one[8];
        snprintf(one, sizeof one, "%s1", names[k]);
        const float *x = fxd(fx, names[k], "x"), *t = fxd(fx, names[k], "t");
        long n = fxn(fx, names[k], "x");
        float loss, *dx = zeros(n);
        bad |= loss_forward(be, &loss, x, t, 0, n, kinds[k]);
        bad |= loss_backward(be, dx, x, t, 0, 1.7f, n, kinds[k]);
        bad |= cmp(names[k], "loss", &loss, 1e-6) | cmp(names[k], "dx", dx, 1e-7);
        memset(dx, 0, n * sizeof(float));
        bad |= loss_forward(be, &loss, x, NULL, 1.0f, n, kinds[k]);
        bad |= loss_backward(be, dx, x, NULL, 1.0f, 1.0f, n, kinds[k]);
        bad |= cmp(one, "loss", &loss, 1e-6) | cmp(one, "dx", dx, 1e-7);
        free(dx);
    }
    return bad != 0;
}

/* Needs no torch: shape arithmetic and argument checks. */
static int test_shapes(void)
{
    struct conv_shape s;
    EXPECT(conv2d_shape(&s, 1, 3, 262, 262, 32, 7, 1, 0) == 0 && s.hout == 256, "k7");
    EXPECT(conv2d_shape(&s, 1, 32, 256, 256, 64, 3, 2, 1) == 0 && s.hout == 128, "down");
    EXPECT(convt2d_shape(&s, 1, 128, 64, 64, 64, 3, 2, 1, 1) == 0 && s.hout == 128, "up");
    EXPECT(conv2d_shape(&s, 1, 3, 2, 2, 8, 7, 1, 0) == -1, "too small accepted");
    backend_t b = backend_cpu_init();
    EXPECT(b && backend_supports(b, BACKEND_OP_CONV2D), "cpu backend");
    float x[4] = {0};
    EXPECT(reflpad_forward(b, x, x, 1, 2, 2, 2) == -1, "pad >= size accepted");
    backend_free(b);
    backend_free(NULL);
    return 0;
}

FX_MAIN(T(test_shapes), T(test_conv2d), T(test_convt2d), T(test_conv_16bit), T(test_reflpad),
        T(test_batchnorm), T(test_instnorm), T(test_activations), T(test_mean), T(test_losses))
