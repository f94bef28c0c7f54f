/*
 * test_ops_math: the per-element math of the CUDA backend's kernels
 * (lib/cuda/ops-math.cuh), run on the CPU, against straightforward
 * transcriptions of the CPU backend's loops (lib/backend-cpu.c,
 * backend-cpu-optim.c, backend-cpu-pool.c).  No GPU is touched: this checks
 * the index logic, the edge cases and the float operation order on any
 * machine with nvcc; the device side differs only in the _rn intrinsics
 * behind ops-math's f_* / d_* wrappers.  Everything that the CPU computes
 * in a fixed order is compared bit for bit.  TAP output.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops-math.cuh"

// ----------------------------------------------------------------------------
// TAP

static int n_tests, n_failed;

static void ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ok(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    n_tests++;
    if (!cond)
        n_failed++;
    printf("%sok %d - ", cond ? "" : "not ", n_tests);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static int same_f(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static int same_d(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

// ----------------------------------------------------------------------------
// data: random floats of mixed magnitude (so the summation order shows),
// with signed zeros, and optionally infinities, NaNs and subnormals

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static float unif(void)
{
    return (float)(rnd() & 0xffffff) / 16777216.0f * 2.0f - 1.0f; /* [-1, 1) */
}

static float rnd_float(int specials)
{
    uint32_t k = rnd() % 64;
    if (k == 0)
        return 0.0f;
    if (k == 1)
        return -0.0f;
    if (specials && k == 2)
        return INFINITY;
    if (specials && k == 3)
        return -INFINITY;
    if (specials && k == 4)
        return NAN;
    if (specials && k == 5)
        return 1e-40f * unif(); /* subnormal */
    float scale = k < 16 ? 1e-3f : k < 24 ? 1e3f : 1.0f;
    return unif() * scale;
}

static void fill(float *x, long n, int specials)
{
    for (long i = 0; i < n; i++)
        x[i] = rnd_float(specials);
}

static const float specials[] = {0.0f,   -0.0f, 1.0f,   -1.0f, 0.5f,     -0.5f,     1e-40f, -1e-40f, 1e30f,
                                 -1e30f, 20.0f, -20.0f, 1e-7f, INFINITY, -INFINITY, NAN,    3.0f,    -2.5f};
#define N_SPECIALS (int)(sizeof specials / sizeof specials[0])

// ----------------------------------------------------------------------------
// reflection padding (lib/backend-cpu.c)

static int ref_reflect(int i, int n)
{
    if (i < 0)
        return -i;
    if (i >= n)
        return 2 * n - 2 - i;
    return i;
}

static void ref_reflpad_forward(float *out, const float *in, int planes, int h, int w, int pad)
{
    int ho = h + 2 * pad, wo = w + 2 * pad;
    for (int pl = 0; pl < planes; pl++) {
        const float *src = in + (long)pl * h * w;
        float *dst = out + (long)pl * ho * wo;
        for (int oy = 0; oy < ho; oy++) {
            const float *srow = src + (long)ref_reflect(oy - pad, h) * w;
            float *d = dst + (long)oy * wo;
            for (int x = 0; x < pad; x++)
                d[x] = srow[pad - x];
            memcpy(d + pad, srow, sizeof(float) * w);
            for (int x = 0; x < pad; x++)
                d[pad + w + x] = srow[w - 2 - x];
        }
    }
}

static void ref_reflpad_backward(float *din, const float *dout, int planes, int h, int w, int pad)
{
    int ho = h + 2 * pad, wo = w + 2 * pad;
    for (int pl = 0; pl < planes; pl++) {
        float *dst = din + (long)pl * h * w;
        const float *src = dout + (long)pl * ho * wo;
        memset(dst, 0, sizeof(float) * h * w);
        for (int oy = 0; oy < ho; oy++) {
            float *drow = dst + (long)ref_reflect(oy - pad, h) * w;
            const float *s = src + (long)oy * wo;
            for (int x = 0; x < pad; x++)
                drow[pad - x] += s[x];
            for (int x = 0; x < w; x++)
                drow[x] += s[pad + x];
            for (int x = 0; x < pad; x++)
                drow[w - 2 - x] += s[pad + w + x];
        }
    }
}

static void test_reflpad(void)
{
    int bad = 0;
    for (int n = 1; n <= 12; n++)
        for (int i = -(n - 1); i <= 2 * n - 2; i++)
            bad += reflect_index(i, n) != ref_reflect(i, n);
    ok(!bad, "reflect_index matches the CPU's reflect for |i| < n");

    static const int shapes[][4] = {{2, 1, 1, 0}, {1, 2, 3, 1},   {3, 5, 4, 3}, {2, 7, 7, 3},  {1, 4, 9, 3},
                                    {1, 3, 3, 2}, {2, 16, 16, 3}, {1, 2, 2, 1}, {2, 9, 5, 4},  {1, 64, 64, 3},
                                    {1, 8, 3, 2}, {2, 6, 6, 5},   {1, 4, 4, 3}, {3, 33, 17, 1}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int planes = shapes[si][0], h = shapes[si][1], w = shapes[si][2], pad = shapes[si][3];
        int ho = h + 2 * pad, wo = w + 2 * pad;
        long nin = (long)planes * h * w, nout = (long)planes * ho * wo;
        float *in = (float *)malloc(sizeof(float) * nin), *out = (float *)malloc(sizeof(float) * nout);
        float *ref = (float *)malloc(sizeof(float) * nout), *dref = (float *)malloc(sizeof(float) * nin);
        fill(in, nin, 1);
        ref_reflpad_forward(ref, in, planes, h, w, pad);
        /* the kernel's gather */
        for (long i = 0; i < nout; i++) {
            int ox = (int)(i % wo), oy = (int)(i / wo % ho);
            long pl = i / wo / ho;
            out[i] = in[(pl * h + reflect_index(oy - pad, h)) * w + reflect_index(ox - pad, w)];
        }
        ok(memcmp(out, ref, sizeof(float) * nout) == 0, "reflpad forward %dx%dx%d pad %d", planes, h, w, pad);

        fill(out, nout, 0); /* dout: finite, mixed magnitudes, signed zeros */
        ref_reflpad_backward(dref, out, planes, h, w, pad);
        int bwd_bad = 0;
        for (long i = 0; i < nin; i++) {
            int ix = (int)(i % w), iy = (int)(i / w % h);
            long pl = i / w / h;
            bwd_bad += !same_f(reflpad_grad(out + pl * ho * wo, h, w, pad, iy, ix), dref[i]);
        }
        ok(!bwd_bad, "reflpad backward (gather) %dx%dx%d pad %d bit for bit with the CPU's scatter", planes,
           h, w, pad);
        free(in);
        free(out);
        free(ref);
        free(dref);
    }

    /* the data is order-sensitive: summing a pixel's entries in another order
     * (centre first) changes some bits, so the checks above do test order */
    int h = 6, w = 6, pad = 5, ho = h + 2 * pad, wo = w + 2 * pad, differs = 0;
    float dout[16 * 16];
    for (int trial = 0; trial < 50 && !differs; trial++) {
        for (int i = 0; i < ho * wo; i++)
            dout[i] = unif() * (rnd() % 2 ? 1e4f : 1e-4f);
        for (int iy = 0; iy < h; iy++)
            for (int ix = 0; ix < w; ix++) {
                float a = reflpad_grad(dout, h, w, pad, iy, ix);
                float b = reflpad_grad_row(dout + (iy + pad) * wo, w, pad, ix, 0.0f);
                if (iy >= 1 && iy <= pad)
                    b = reflpad_grad_row(dout + (pad - iy) * wo, w, pad, ix, b);
                if (iy >= h - 1 - pad && iy <= h - 2)
                    b = reflpad_grad_row(dout + (2 * h - 2 - iy + pad) * wo, w, pad, ix, b);
                differs |= !same_f(a, b);
            }
    }
    ok(differs, "reflpad backward data is order-sensitive (another order gives other bits)");
}

// ----------------------------------------------------------------------------
// activations (lib/backend-cpu.c)

static float ref_act_fwd(float x, int kind)
{
    switch (kind) {
    case ACT_RELU: return x > 0 ? x : 0.0f;
    case ACT_LRELU: return x > 0 ? x : x * ACT_LRELU_SLOPE;
    default: return tanhf(x);
    }
}

static float ref_act_bwd(float g, float y, int kind)
{
    switch (kind) {
    case ACT_RELU: return y > 0 ? g : 0.0f;
    case ACT_LRELU: return y > 0 ? g : g * ACT_LRELU_SLOPE;
    default: return g * (1.0f - y * y);
    }
}

static void test_act(void)
{
    static const char *names[] = {"relu", "lrelu", "tanh"};
    for (int kind = ACT_RELU; kind <= ACT_TANH; kind++) {
        int bad_f = 0, bad_b = 0;
        for (int i = 0; i < N_SPECIALS; i++) {
            float x = specials[i];
            float y = act_fwd(x, (enum act_kind)kind);
            bad_f += !same_f(y, ref_act_fwd(x, kind));
            for (int j = 0; j < N_SPECIALS; j++)
                bad_b +=
                    !same_f(act_bwd(specials[j], y, (enum act_kind)kind), ref_act_bwd(specials[j], y, kind));
        }
        for (int i = 0; i < 100000; i++) {
            float x = rnd_float(1), g = rnd_float(1);
            float y = act_fwd(x, (enum act_kind)kind);
            bad_f += !same_f(y, ref_act_fwd(x, kind));
            bad_b += !same_f(act_bwd(g, y, (enum act_kind)kind), ref_act_bwd(g, y, kind));
        }
        ok(!bad_f, "%s forward matches the CPU (specials, NaN, +-0, +-inf, subnormals)", names[kind]);
        ok(!bad_b, "%s backward from the output matches the CPU", names[kind]);
    }
    ok(act_fwd(NAN, ACT_RELU) == 0.0f && act_bwd(1.0f, NAN, ACT_RELU) == 0.0f &&
           act_bwd(1.0f, 0.0f, ACT_RELU) == 0.0f && act_bwd(1.0f, -0.0f, ACT_LRELU) == ACT_LRELU_SLOPE,
       "relu maps NaN to 0; the derivative at 0 is the negative side's");
    ok(isnan(act_fwd(NAN, ACT_LRELU)) && isnan(act_fwd(NAN, ACT_TANH)), "lrelu and tanh propagate NaN");
    ok(act_fwd(-1.0f, ACT_LRELU) == -1.0f * 0.2f && same_f(act_fwd(-0.0f, ACT_LRELU), -0.0f),
       "lrelu negative slope 0.2 (float), -0 stays -0");
}

// ----------------------------------------------------------------------------
// means and losses (lib/backend-cpu.c)

static double ref_loss_forward(const float *x, const float *target, float tv, long n, int kind)
{
    double s = 0;
    for (long i = 0; i < n; i++) {
        double d = (double)x[i] - (target ? target[i] : tv);
        s += kind == LOSS_MSE ? d * d : fabs(d);
    }
    return s;
}

static void ref_loss_backward(float *dx, const float *x, const float *target, float tv, float scale, long n,
                              int kind)
{
    float k = (kind == LOSS_MSE ? 2.0f : 1.0f) * scale / (float)n;
    for (long i = 0; i < n; i++) {
        float d = x[i] - (target ? target[i] : tv);
        if (kind == LOSS_MSE)
            dx[i] += k * d;
        else
            dx[i] += d > 0 ? k : d < 0 ? -k : 0.0f;
    }
}

static void test_loss(void)
{
    static const long sizes[] = {1, 2, 7, 900, 1000, 65537};
    static const float tvs[] = {0.0f, 1.0f, -1.0f, 0.9f};
    static const float scales[] = {1.0f, 10.0f, 0.5f, 0.1f, -3.0f};
    for (int kind = LOSS_MSE; kind <= LOSS_L1; kind++) {
        const char *name = kind == LOSS_MSE ? "mse" : "l1";
        int bad_sum = 0, bad_val = 0, bad_k = 0, bad_g = 0;
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            long n = sizes[si];
            float *x = (float *)malloc(sizeof(float) * n), *t = (float *)malloc(sizeof(float) * n);
            float *dx = (float *)malloc(sizeof(float) * n), *dref = (float *)malloc(sizeof(float) * n);
            fill(x, n, 0);
            fill(t, n, 0);
            for (long i = 0; i < n; i += 5)
                t[i] = x[i]; /* d = 0: sign(0) = 0 for L1 */
            for (int ti = 0; ti < 5; ti++) {
                const float *tg = ti == 4 ? t : NULL;
                float tv = ti < 4 ? tvs[ti] : 0.0f;
                double s = 0.0; /* the device's per-thread order: sequential */
                for (long i = 0; i < n; i++)
                    s = d_add(s, loss_term(x[i], tg ? tg[i] : tv, (enum loss_kind)kind));
                double ref = ref_loss_forward(x, tg, tv, n, kind);
                bad_sum += !same_d(s, ref);
                bad_val += !same_f(mean_of(s, n), (float)(ref / n));
                for (size_t ki = 0; ki < sizeof scales / sizeof scales[0]; ki++) {
                    float scale = scales[ki];
                    float k = loss_grad_coef(scale, n, (enum loss_kind)kind);
                    bad_k += !same_f(k, (kind == LOSS_MSE ? 2.0f : 1.0f) * scale / (float)n);
                    fill(dx, n, 0);
                    memcpy(dref, dx, sizeof(float) * n);
                    ref_loss_backward(dref, x, tg, tv, scale, n, kind);
                    for (long i = 0; i < n; i++)
                        dx[i] = loss_grad_acc(dx[i], x[i], tg ? tg[i] : tv, k, (enum loss_kind)kind);
                    bad_g += memcmp(dx, dref, sizeof(float) * n) != 0;
                }
            }
            free(x);
            free(t);
            free(dx);
            free(dref);
        }
        ok(!bad_sum, "%s loss terms summed in order equal the CPU's double sum (target array and constant)",
           name);
        ok(!bad_val, "%s loss value (float)(sum / n) matches", name);
        ok(!bad_k, "%s gradient coefficient k = c*scale/(float)n matches", name);
        ok(!bad_g, "%s backward accumulates dx += ... bit for bit", name);
    }
    float dx = 1.0f;
    dx = loss_grad_acc(dx, 2.0f, 2.0f, 0.25f, LOSS_L1);
    float dn = loss_grad_acc(1.0f, NAN, 0.0f, 0.25f, LOSS_L1);
    float dm = loss_grad_acc(1.0f, -0.0f, 0.0f, 0.25f, LOSS_MSE);
    ok(dx == 1.0f && dn == 1.0f && dm == 1.0f, "L1 sign(0) = sign(NaN) = 0; the backward accumulates");
    ok(isnan(loss_term(NAN, 0.0f, LOSS_MSE)) && isinf(loss_term(INFINITY, 0.0f, LOSS_L1)),
       "loss terms propagate NaN and inf");

    /* mean rows */
    int bad = 0;
    for (long m = 1; m < 2000; m = m * 3 + 1) {
        float x[4000];
        fill(x, m, 0);
        double s = 0, r = 0;
        for (long j = 0; j < m; j++) {
            s = d_add(s, (double)x[j]);
            r += x[j];
        }
        bad += !same_f(mean_of(s, m), (float)(r / m));
        for (int i = 0; i < 20; i++) {
            float g = rnd_float(1);
            bad += !same_f(mean_grad(g, m), g / (float)m);
        }
    }
    ok(!bad, "mean rows: (float)(sum / m) and the backward dout / (float)m match");
}

// ----------------------------------------------------------------------------
// norms (lib/backend-cpu.c plane_stats, batchnorm, instnorm, norm_backward_group)

static void ref_plane_stats(const float *x, int n, long stride, long hw, double *mean, double *var)
{
    double s = 0;
    for (int i = 0; i < n; i++) {
        const float *p = x + i * stride;
        for (long j = 0; j < hw; j++)
            s += p[j];
    }
    double m = s / ((double)n * hw), v = 0;
    for (int i = 0; i < n; i++) {
        const float *p = x + i * stride;
        for (long j = 0; j < hw; j++) {
            double d = p[j] - m;
            v += d * d;
        }
    }
    *mean = m;
    *var = v / ((double)n * hw);
}

static void ref_affine(float *out, const float *in, int n, long stride, long hw, float a, float b)
{
    for (int i = 0; i < n; i++)
        for (long j = 0; j < hw; j++)
            out[i * stride + j] = in[i * stride + j] * a + b;
}

static void ref_batchnorm_forward(float *out, float *mean, float *rstd, const float *in, const float *gamma,
                                  const float *beta, float *run_mean, float *run_var, int n, int c, int hw,
                                  int training, double momentum, double eps)
{
    long cnt = (long)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double m, v, r;
        if (training) {
            ref_plane_stats(in + (long)ch * hw, n, (long)c * hw, hw, &m, &v);
            r = 1.0 / sqrt(v + eps);
            run_mean[ch] = (float)(momentum * m + (1 - momentum) * run_mean[ch]);
            run_var[ch] = (float)(momentum * v * cnt / (double)(cnt - 1) + (1 - momentum) * run_var[ch]);
        } else {
            m = run_mean[ch];
            r = 1.0 / sqrt((double)run_var[ch] + eps);
        }
        mean[ch] = (float)m;
        rstd[ch] = (float)r;
        double a = r * (gamma ? gamma[ch] : 1.0);
        double b = (beta ? beta[ch] : 0.0) - m * a;
        ref_affine(out + (long)ch * hw, in + (long)ch * hw, n, (long)c * hw, hw, (float)a, (float)b);
    }
}

static void ref_norm_backward_group(float *din, float *dgamma, float *dbeta, const float *dout,
                                    const float *in, float m, float r, float gam, int n, long stride, long hw,
                                    int training)
{
    double sg = 0, sgx = 0;
    for (int i = 0; i < n; i++) {
        const float *g = dout + i * stride, *x = in + i * stride;
        for (long j = 0; j < hw; j++) {
            sg += g[j];
            sgx += (double)g[j] * ((x[j] - m) * r);
        }
    }
    if (dbeta)
        *dbeta += (float)sg;
    if (dgamma)
        *dgamma += (float)sgx;
    if (!din)
        return;
    double cnt = (double)n * hw;
    float k = r * gam, mg = training ? (float)(sg / cnt) : 0.0f, mgx = training ? (float)(sgx / cnt) : 0.0f;
    for (int i = 0; i < n; i++) {
        const float *g = dout + i * stride, *x = in + i * stride;
        float *d = din + i * stride;
        for (long j = 0; j < hw; j++)
            d[j] = k * (g[j] - mg - (x[j] - m) * r * mgx);
    }
}

/* the device's group_stats / group_apply / group_backward with sequential
 * sums (the reduction tree itself is not host code) */
static void dev_group_stats(const float *x, int nseg, long stride, long hw, double *mean, double *var)
{
    double cnt = d_mul((double)nseg, (double)hw), s = 0.0, v = 0.0;
    for (int i = 0; i < nseg; i++)
        for (long j = 0; j < hw; j++)
            s = d_add(s, (double)x[i * stride + j]);
    double m = d_div(s, cnt);
    for (int i = 0; i < nseg; i++)
        for (long j = 0; j < hw; j++)
            v = d_add(v, var_term(x[i * stride + j], m));
    *mean = m;
    *var = d_div(v, cnt);
}

static void dev_group_backward(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                               float m, float r, float gam, int nseg, long stride, long hw, int training)
{
    double sg = 0.0, sgx = 0.0;
    for (int i = 0; i < nseg; i++)
        for (long j = 0; j < hw; j++) {
            long p = i * stride + j;
            sg = d_add(sg, (double)dout[p]);
            sgx = d_add(sgx, d_mul((double)dout[p], (double)norm_xhat(in[p], m, r)));
        }
    if (dbeta)
        *dbeta = f_add(*dbeta, (float)sg);
    if (dgamma)
        *dgamma = f_add(*dgamma, (float)sgx);
    if (!din)
        return;
    double cnt = d_mul((double)nseg, (double)hw);
    float k = f_mul(r, gam);
    float mg = training ? (float)d_div(sg, cnt) : 0.0f;
    float mgx = training ? (float)d_div(sgx, cnt) : 0.0f;
    for (int i = 0; i < nseg; i++)
        for (long j = 0; j < hw; j++) {
            long p = i * stride + j;
            din[p] = norm_din(dout[p], in[p], m, r, k, mg, mgx);
        }
}

static void test_norms(void)
{
    static const int shapes[][3] = {{1, 3, 1}, {2, 4, 9}, {4, 2, 16}, {1, 8, 64}, {3, 5, 7}, {2, 1, 1000}};
    const double eps = 1e-5, momentum = 0.1;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int n = shapes[si][0], c = shapes[si][1], hw = shapes[si][2];
        long total = (long)n * c * hw;
        float *in = (float *)malloc(sizeof(float) * total), *dout = (float *)malloc(sizeof(float) * total);
        float *out = (float *)malloc(sizeof(float) * total), *ref = (float *)malloc(sizeof(float) * total);
        float *din = (float *)malloc(sizeof(float) * total), *dref = (float *)malloc(sizeof(float) * total);
        float gamma[8], beta[8], rm[8], rv[8], rm_ref[8], rv_ref[8], mean[8], rstd[8], mref[8], sref[8];
        float dg[8], db[8], dg_ref[8], db_ref[8];
        for (long i = 0; i < total; i++) {
            in[i] = unif() * 3.0f + 0.5f;
            dout[i] = unif();
        }
        for (int ch = 0; ch < c; ch++) {
            gamma[ch] = 1.0f + 0.1f * unif();
            beta[ch] = 0.1f * unif();
            rm[ch] = rm_ref[ch] = 0.1f * unif();
            rv[ch] = rv_ref[ch] = 1.0f + 0.1f * unif();
            dg[ch] = dg_ref[ch] = unif();
            db[ch] = db_ref[ch] = unif();
        }
        for (int affine = 0; affine < 2; affine++)
            for (int training = (n * hw < 2 ? 0 : 1); training >= 0; training--) {
                const float *g = affine ? gamma : NULL, *b = affine ? beta : NULL;
                ref_batchnorm_forward(ref, mref, sref, in, g, b, rm_ref, rv_ref, n, c, hw, training, momentum,
                                      eps);
                long stride = (long)c * hw;
                for (int ch = 0; ch < c; ch++) {
                    const float *x = in + (long)ch * hw;
                    double m, r;
                    if (training) {
                        double v;
                        dev_group_stats(x, n, stride, hw, &m, &v);
                        r = rstd_of(v, eps);
                        rm[ch] = bn_run_mean(momentum, m, rm[ch]);
                        rv[ch] = bn_run_var(momentum, v, (long)n * hw, rv[ch]);
                    } else {
                        m = (double)rm[ch];
                        r = rstd_of((double)rv[ch], eps);
                    }
                    mean[ch] = (float)m;
                    rstd[ch] = (float)r;
                    float a, bb;
                    bn_coefs(m, r, g ? (double)g[ch] : 1.0, b ? (double)b[ch] : 0.0, &a, &bb);
                    for (int i = 0; i < n; i++)
                        for (long j = 0; j < hw; j++)
                            out[ch * hw + i * stride + j] = norm_apply(x[i * stride + j], a, bb);
                }
                ok(memcmp(out, ref, sizeof(float) * total) == 0 &&
                       memcmp(mean, mref, sizeof(float) * c) == 0 &&
                       memcmp(rstd, sref, sizeof(float) * c) == 0 &&
                       memcmp(rm, rm_ref, sizeof(float) * c) == 0 &&
                       memcmp(rv, rv_ref, sizeof(float) * c) == 0,
                   "batchnorm forward n%d c%d hw%d %s%s: out, mean, rstd, running stats", n, c, hw,
                   training ? "training" : "eval", affine ? " affine" : "");

                for (int ch = 0; ch < c; ch++) {
                    long off = (long)ch * hw;
                    ref_norm_backward_group(dref + off, dg_ref + ch, db_ref + ch, dout + off, in + off,
                                            mref[ch], sref[ch], g ? g[ch] : 1.0f, n, stride, hw, training);
                    dev_group_backward(din + off, dg + ch, db + ch, dout + off, in + off, mean[ch], rstd[ch],
                                       g ? g[ch] : 1.0f, n, stride, hw, training);
                }
                ok(memcmp(din, dref, sizeof(float) * total) == 0 &&
                       memcmp(dg, dg_ref, sizeof(float) * c) == 0 &&
                       memcmp(db, db_ref, sizeof(float) * c) == 0,
                   "batchnorm backward n%d c%d hw%d %s%s: din, dgamma += and dbeta +=", n, c, hw,
                   training ? "training" : "eval", affine ? " affine" : "");
            }

        /* instance norm over the n*c planes */
        int planes = n * c, bad_f = 0, bad_b = 0;
        for (int pl = 0; pl < planes; pl++) {
            const float *x = in + (long)pl * hw;
            double m, v, rm_d, rv_d;
            ref_plane_stats(x, 1, hw, hw, &rm_d, &rv_d);
            double rr = 1.0 / sqrt(rv_d + eps);
            ref_affine(ref + (long)pl * hw, x, 1, hw, hw, (float)rr, (float)(-rm_d * rr));
            dev_group_stats(x, 1, hw, hw, &m, &v);
            double r = rstd_of(v, eps);
            float a, b;
            in_coefs(m, r, &a, &b);
            for (long j = 0; j < hw; j++)
                out[pl * hw + j] = norm_apply(x[j], a, b);
            bad_f += !same_f((float)m, (float)rm_d) || !same_f((float)r, (float)rr);
            long off = (long)pl * hw;
            ref_norm_backward_group(dref + off, NULL, NULL, dout + off, in + off, (float)rm_d, (float)rr,
                                    1.0f, 1, hw, hw, 1);
            dev_group_backward(din + off, NULL, NULL, dout + off, in + off, (float)m, (float)r, 1.0f, 1, hw,
                               hw, 1);
        }
        bad_f += memcmp(out, ref, sizeof(float) * total) != 0;
        bad_b += memcmp(din, dref, sizeof(float) * total) != 0;
        ok(!bad_f, "instnorm forward %d planes of %d: out, mean, rstd", planes, hw);
        ok(!bad_b, "instnorm backward %d planes of %d", planes, hw);
        free(in);
        free(dout);
        free(out);
        free(ref);
        free(din);
        free(dref);
    }

    /* the zero-mean plane: b = -m*r is -0, not 0 - m*r = +0 */
    float a, b;
    in_coefs(0.0, 2.0, &a, &b);
    ok(same_f(b, (float)(-0.0 * 2.0)) && same_f(b, -0.0f),
       "instnorm offset -m*r keeps the CPU's signed zero");
    ok(bn_run_var(0.1, 2.0, 4, 1.0f) == (float)(0.1 * 2.0 * 4 / 3.0 + 0.9 * 1.0),
       "batchnorm running variance is the unbiased one");
}

// ----------------------------------------------------------------------------
// Adam (lib/backend-cpu-optim.c)

static void ref_adam_step(float *param, const float *grad, float *exp_avg, float *exp_avg_sq, long n,
                          double lr, double beta1, double beta2, double eps, double weight_decay, long step)
{
    double bc1 = 1.0 - pow(beta1, (double)step);
    double bc2 = 1.0 - pow(beta2, (double)step);
    float neg_step_size = (float)(-(lr / bc1));
    float bc2_sqrt = (float)sqrt(bc2);
    float wd = (float)weight_decay, b1 = (float)beta1, b2 = (float)beta2;
    float c1 = (float)(1.0 - beta1), c2 = (float)(1.0 - beta2), feps = (float)eps;
    int use_wd = weight_decay != 0;
    for (long i = 0; i < n; i++) {
        float g = use_wd ? fmaf(param[i], wd, grad[i]) : grad[i];
        float m = fmaf(g, c1, exp_avg[i] * b1);
        float v = fmaf(c2 * g, g, exp_avg_sq[i] * b2);
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        float denom = sqrtf(v) / bc2_sqrt + feps;
        param[i] = param[i] + (neg_step_size * m) / denom;
    }
}

static void test_adam(void)
{
    enum { N = 20000 };
    static float p[N], g[N], m[N], v[N], pr[N], mr[N], vr[N];
    static const double cfg[][5] = {
        /* lr, beta1, beta2, eps, weight_decay */
        {2e-4, 0.5, 0.999, 1e-8, 0.0},
        {1e-3, 0.9, 0.999, 1e-8, 1e-2},
        {0.1, 0.0, 0.99, 1e-6, 0.0},
        {5e-5, 0.5, 0.999, 1e-8, 5e-4},
    };
    for (size_t ci = 0; ci < sizeof cfg / sizeof cfg[0]; ci++) {
        const double *c = cfg[ci];
        for (long i = 0; i < N; i++) {
            p[i] = pr[i] = unif() * (i % 7 == 0 ? 10.0f : 0.1f);
            m[i] = mr[i] = 0.0f;
            v[i] = vr[i] = 0.0f;
        }
        int bad = 0, bad_s = 0;
        for (long step = 1; step <= 30; step++) {
            for (long i = 0; i < N; i++)
                g[i] = i % 11 == 0 ? 0.0f : i % 13 == 0 ? -0.0f : unif() * (i % 5 == 0 ? 1e-4f : 1.0f);
            struct adam_scalars s = adam_scalars_of(c[0], c[1], c[2], c[3], c[4], step);
            double bc1 = 1.0 - pow(c[1], (double)step), bc2 = 1.0 - pow(c[2], (double)step);
            bad_s += !same_f(s.neg_step_size, (float)(-(c[0] / bc1))) ||
                     !same_f(s.bc2_sqrt, (float)sqrt(bc2)) || !same_f(s.c1, (float)(1.0 - c[1])) ||
                     !same_f(s.c2, (float)(1.0 - c[2])) || !same_f(s.eps, (float)c[3]) ||
                     s.use_wd != (c[4] != 0);
            for (long i = 0; i < N; i++)
                adam_update(&p[i], g[i], &m[i], &v[i], &s);
            ref_adam_step(pr, g, mr, vr, N, c[0], c[1], c[2], c[3], c[4], step);
            bad +=
                memcmp(p, pr, sizeof p) != 0 || memcmp(m, mr, sizeof m) != 0 || memcmp(v, vr, sizeof v) != 0;
        }
        ok(!bad_s, "adam host scalars (lr %g, betas %g %g, wd %g) as the CPU", c[0], c[1], c[2], c[4]);
        ok(!bad, "adam 30 steps (lr %g, betas %g %g, wd %g): param, exp_avg, exp_avg_sq bit for bit", c[0],
           c[1], c[2], c[4]);
    }

    /* fmaf is where torch fuses: the unfused v differs somewhere, so the check above is sharp */
    int differs = 0;
    for (int i = 0; i < 1000 && !differs; i++) {
        float gg = unif(), vv = unif() * unif();
        vv = vv < 0 ? -vv : vv;
        float c2 = (float)(1.0 - 0.999), b2 = 0.999f;
        differs = !same_f(fmaf(c2 * gg, gg, vv * b2), c2 * gg * gg + vv * b2);
    }
    ok(differs, "adam data tells fused from unfused second moments");

    /* weight decay 0 uses grad as is, no fma(param, 0, grad): an infinite
     * parameter would make that NaN */
    struct adam_scalars s = adam_scalars_of(1e-3, 0.9, 0.999, 1e-8, 0.0, 1);
    float pp = INFINITY, mm = 0.0f, vv = 0.0f;
    adam_update(&pp, 1.0f, &mm, &vv, &s);
    ok(s.use_wd == 0 && same_f(mm, s.c1) && same_f(vv, s.c2),
       "adam without weight decay leaves grad untouched");
}

// ----------------------------------------------------------------------------
// sums of squares (lib/backend-cpu-optim.c)

#define REF_SUMSQ_BLOCK 8192
#define REF_SUMSQ_CHUNK 256

static double ref_block_sumsq(const float *x, long n)
{
    double s = 0;
    for (long j = 0; j < n; j++)
        s += (double)x[j] * x[j];
    return s;
}

static void ref_sumsq(double *out, const float *x, const long *sizes, int count)
{
    for (int r = 0; r < count; r++) {
        long n = sizes[r];
        if (n <= REF_SUMSQ_BLOCK) {
            out[r] = ref_block_sumsq(x, n);
        } else {
            double part[REF_SUMSQ_CHUNK], s = 0;
            long nblocks = (n + REF_SUMSQ_BLOCK - 1) / REF_SUMSQ_BLOCK;
            for (long b0 = 0; b0 < nblocks; b0 += REF_SUMSQ_CHUNK) {
                int nb = (int)(nblocks - b0 < REF_SUMSQ_CHUNK ? nblocks - b0 : REF_SUMSQ_CHUNK);
                for (int b = 0; b < nb; b++) {
                    long lo = (b0 + b) * REF_SUMSQ_BLOCK;
                    long len = n - lo < REF_SUMSQ_BLOCK ? n - lo : REF_SUMSQ_BLOCK;
                    part[b] = ref_block_sumsq(x + lo, len);
                }
                for (int b = 0; b < nb; b++)
                    s += part[b];
            }
            out[r] = s;
        }
        x += n;
    }
}

static void test_sumsq(void)
{
    static const long sizes[] = {0,    1,     31,    32, 33,           64,     100, 8191,           8192,
                                 8193, 16384, 16385, 0,  3 * 8192 + 5, 100000, 7,   256 * 8192 + 1, 2 * 8192,
                                 5,    1};
    const int count = (int)(sizeof sizes / sizeof sizes[0]);
    long total = 0;
    for (int r = 0; r < count; r++)
        total += sizes[r];
    float *x = (float *)malloc(sizeof(float) * total);
    fill(x, total, 0);
    for (long i = 0; i < total; i += 97)
        x[i] *= 1e6f; /* large terms make the order visible */
    double ref[32], got[32];
    ref_sumsq(ref, x, sizes, count);

    long run_off[33], seg_first[33];
    long nseg = sumsq_table(sizes, count, run_off, seg_first);
    double *part = (double *)malloc(sizeof(double) * nseg);
    /* the segments must tile every run exactly once, in order */
    int tiles = 1;
    long next = 0;
    for (long sg = 0; sg < nseg; sg++) {
        long off, len;
        sumsq_segment(run_off, seg_first, count, sg, &off, &len);
        if (len > 0) {
            tiles &= off == next && len <= SUMSQ_SEG;
            next = off + len;
        }
        part[sg] = sumsq_seq(x + off, len);
    }
    tiles &= next == total;
    for (int r = 0; r < count; r++)
        got[r] = sumsq_run_total(part, seg_first[r], seg_first[r + 1]);
    ok(tiles, "sumsq segments tile the %d runs (%ld floats) in order, %ld segments", count, total, nseg);
    ok(memcmp(got, ref, sizeof(double) * count) == 0, "sumsq equals cpu_sumsq bit for bit (runs of 0 .. 2M)");

    long bad_size = -1;
    ok(sumsq_table(&bad_size, 1, run_off, seg_first) < 0, "sumsq table refuses a negative size");

    /* a different blocking gives other bits: the check above is sharp */
    long big = 100000, off = 0;
    for (int r = 0; r < count && sizes[r] != big; r++)
        off += sizes[r];
    double whole = ref_block_sumsq(x + off, big);
    ok(!same_d(whole, ref[14]), "sumsq data tells blocked from unblocked summation");
    free(part);
    free(x);
}

// ----------------------------------------------------------------------------
// pooling (lib/backend-cpu-pool.c, the row kernel without its vectorisation)

static void ref_pool_tap_range(const struct pool_shape *s, int kx, int c0, int c1, int *lo, int *hi)
{
    int a = s->pad - kx, l = a > 0 ? (a + s->stride - 1) / s->stride : 0;
    int b = s->w - 1 + s->pad - kx, h = b >= 0 ? b / s->stride + 1 : 0;
    *lo = l > c0 ? l : c0;
    *hi = h < c1 ? h : c1;
}

static void ref_pool_row(float *o, const float *x, const struct pool_shape *s, int oy, int c0, int c1)
{
    float acc[256];
    int hs = oy * s->stride - s->pad, he = hs + s->k;
    if (he > s->h + s->pad)
        he = s->h + s->pad;
    int ph = he - hs;
    if (hs < 0)
        hs = 0;
    if (he > s->h)
        he = s->h;
    int nc = c1 - c0, mx = s->kind == POOL_MAX;
    float init = mx ? -INFINITY : 0.0f;
    for (int j = 0; j < nc; j++)
        acc[j] = init;
    for (int iy = hs; iy < he; iy++) {
        const float *row = x + (long)iy * s->w;
        for (int kx = 0; kx < s->k; kx++) {
            int lo, hi;
            ref_pool_tap_range(s, kx, c0, c1, &lo, &hi);
            const float *src = row - s->pad + kx;
            if (mx) {
                for (int ox = lo; ox < hi; ox++) {
                    float v = src[(long)ox * s->stride], a = acc[ox - c0];
                    acc[ox - c0] = (v > a || v != v) ? v : a;
                }
            } else {
                for (int ox = lo; ox < hi; ox++)
                    acc[ox - c0] += src[(long)ox * s->stride];
            }
        }
    }
    if (mx) {
        memcpy(o + c0, acc, sizeof(float) * nc);
        return;
    }
    for (int ox = c0; ox < c1; ox++) {
        int ws = ox * s->stride - s->pad, we = ws + s->k;
        if (we > s->w + s->pad)
            we = s->w + s->pad;
        int pw = we - ws;
        if (ws < 0)
            ws = 0;
        if (we > s->w)
            we = s->w;
        int div = s->kind == POOL_AVG ? ph * pw : (he - hs) * (we - ws);
        o[ox] = acc[ox - c0] / (float)div;
    }
}

static void test_pool(void)
{
    static const int geo[][5] = {
        /* h, w, k, stride, pad */
        {35, 35, 3, 1, 1}, {35, 35, 3, 2, 0}, {8, 8, 3, 1, 1}, {147, 147, 3, 2, 0},
        {17, 17, 3, 1, 1}, {8, 8, 8, 1, 0},   {5, 7, 2, 2, 1}, {6, 6, 4, 3, 2},
        {1, 1, 1, 1, 0},   {9, 4, 5, 2, 2},   {7, 7, 3, 3, 1}, {10, 3, 3, 1, 1},
    };
    static const char *names[] = {"max", "avg", "avg excl pad"};
    for (size_t gi = 0; gi < sizeof geo / sizeof geo[0]; gi++)
        for (int kind = POOL_MAX; kind <= POOL_AVG_EXCL_PAD; kind++) {
            struct pool_shape s;
            memset(&s, 0, sizeof s);
            s.n = 1, s.c = 1, s.h = geo[gi][0], s.w = geo[gi][1], s.k = geo[gi][2], s.stride = geo[gi][3];
            s.pad = geo[gi][4], s.kind = (enum pool_kind)kind;
            s.hout = (s.h + 2 * s.pad - s.k) / s.stride + 1;
            s.wout = (s.w + 2 * s.pad - s.k) / s.stride + 1;
            long hw = (long)s.h * s.w;
            float *x = (float *)malloc(sizeof(float) * hw);
            float *o = (float *)malloc(sizeof(float) * s.hout * s.wout);
            fill(x, hw, kind == POOL_MAX); /* NaN and inf for max */
            int bad = 0, bad_div = 0;
            for (int oy = 0; oy < s.hout; oy++) {
                float *orow = o + (long)oy * s.wout;
                for (int c0 = 0; c0 < s.wout; c0 += 256)
                    ref_pool_row(orow, x, &s, oy, c0, s.wout - c0 < 256 ? s.wout : c0 + 256);
                for (int ox = 0; ox < s.wout; ox++) {
                    bad += !same_f(pool_out(x, &s, oy, ox), orow[ox]);
                    /* the divisor against a direct count of the window's taps */
                    struct pool_win p = pool_window(&s, oy, ox);
                    int in_img = 0, in_pad = 0;
                    for (int ky = 0; ky < s.k; ky++)
                        for (int kx = 0; kx < s.k; kx++) {
                            int iy = oy * s.stride - s.pad + ky, ix = ox * s.stride - s.pad + kx;
                            in_pad += iy < s.h + s.pad && ix < s.w + s.pad;
                            in_img += iy >= 0 && iy < s.h && ix >= 0 && ix < s.w;
                        }
                    if (kind != POOL_MAX)
                        bad_div += p.div != (kind == POOL_AVG ? in_pad : in_img) || p.div < 1;
                }
            }
            ok(!bad && !bad_div, "pool %s %dx%d k%d s%d p%d: every output and divisor as the CPU",
               names[kind], s.h, s.w, s.k, s.stride, s.pad);
            free(x);
            free(o);
        }

    struct pool_shape s;
    memset(&s, 0, sizeof s);
    s.n = 1, s.c = 1, s.h = 3, s.w = 3, s.k = 3, s.stride = 1, s.pad = 1, s.kind = POOL_MAX, s.hout = 3,
    s.wout = 3;
    float x[9] = {NAN, 2, 3, 4, 5, 6, 7, 8, 9};
    ok(isnan(pool_out(x, &s, 0, 0)) && isnan(pool_out(x, &s, 1, 1)) && pool_out(x, &s, 2, 2) == 9.0f &&
           pool_out(x, &s, 0, 2) == 6.0f,
       "max pool: NaN in the window wins, padding never does");
    float y[9] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY,
                  -INFINITY, -INFINITY, -INFINITY, -1.0f};
    ok(pool_out(y, &s, 0, 0) == -INFINITY && pool_out(y, &s, 2, 2) == -1.0f, "max pool of -inf stays -inf");
}

// ----------------------------------------------------------------------------
// bilinear resize (lib/backend-cpu-pool.c)

struct ref_tap {
    int lo, hi;
    float w0, w1;
};

static struct ref_tap ref_tap_half_pixel(int d, int in, int out)
{
    if (in == out)
        return (struct ref_tap){d, d, 1.0f, 0.0f};
    float scale = (float)in / (float)out;
    double src = (double)scale * (d + 0.5) - 0.5;
    if (src < 0)
        src = 0;
    int lo = (int)src, hi = lo + (lo < in - 1 ? 1 : 0);
    double f = src - lo;
    float l1 = (float)(f < 0 ? 0 : f > 1 ? 1 : f);
    return (struct ref_tap){lo, hi, 1.0f - l1, l1};
}

static struct ref_tap ref_tap_tf1(int d, int in, int out)
{
    float scale = (float)((double)in / (double)out);
    float src = (float)d * scale;
    int lo = (int)src, hi = lo + 1 < in ? lo + 1 : in - 1;
    return (struct ref_tap){lo, hi, 0.0f, src - (float)lo};
}

static void ref_resize(float *out, const float *in, int planes, int h, int w, int hout, int wout, int tf1,
                       float mul, float add)
{
    long rows = (long)planes * hout;
    for (long r = 0; r < rows; r++) {
        int pl = (int)(r / hout), oy = (int)(r % hout);
        const float *x = in + (long)pl * h * w;
        float *o = out + r * wout;
        struct ref_tap ty = tf1 ? ref_tap_tf1(oy, h, hout) : ref_tap_half_pixel(oy, h, hout);
        const float *r0 = x + (long)ty.lo * w, *r1 = x + (long)ty.hi * w;
        for (int ox = 0; ox < wout; ox++) {
            float v;
            if (tf1) {
                struct ref_tap tx = ref_tap_tf1(ox, w, wout);
                float i0 = r0[tx.lo] + (r0[tx.hi] - r0[tx.lo]) * tx.w1;
                float i1 = r1[tx.lo] + (r1[tx.hi] - r1[tx.lo]) * tx.w1;
                v = i0 + (i1 - i0) * ty.w1;
            } else {
                struct ref_tap tx = ref_tap_half_pixel(ox, w, wout);
                float t0 = r0[tx.lo] * tx.w0 + r0[tx.hi] * tx.w1;
                float t1 = r1[tx.lo] * tx.w0 + r1[tx.hi] * tx.w1;
                v = t0 * ty.w0 + t1 * ty.w1;
            }
            o[ox] = v * mul + add;
        }
    }
}

static void test_resize(void)
{
    static const int geo[][4] = {
        /* h, w, hout, wout */
        {256, 256, 299, 299}, {128, 128, 299, 299}, {299, 299, 299, 299}, {512, 512, 299, 299}, {1, 1, 5, 5},
        {5, 1, 1, 5},         {7, 13, 3, 29},       {3, 3, 2, 2},         {200, 100, 299, 299}, {2, 9, 9, 2},
    };
    static const float ma[][2] = {{1.0f, 0.0f}, {2.0f, -1.0f}, {1.0f / 128.0f, -1.0f}};
    for (size_t gi = 0; gi < sizeof geo / sizeof geo[0]; gi++)
        for (int tf1 = 0; tf1 < 2; tf1++) {
            int h = geo[gi][0], w = geo[gi][1], hout = geo[gi][2], wout = geo[gi][3], planes = 2;
            long nin = (long)planes * h * w, nout = (long)planes * hout * wout;
            float *in = (float *)malloc(sizeof(float) * nin), *ref = (float *)malloc(sizeof(float) * nout);
            for (long i = 0; i < nin; i++)
                in[i] = tf1 ? (float)(rnd() % 256) : unif();
            int bad = 0, bad_tap = 0;
            for (size_t mi = 0; mi < sizeof ma / sizeof ma[0]; mi++) {
                ref_resize(ref, in, planes, h, w, hout, wout, tf1, ma[mi][0], ma[mi][1]);
                for (long i = 0; i < nout; i++) {
                    int ox = (int)(i % wout), oy = (int)(i / wout % hout);
                    long pl = i / wout / hout;
                    struct rs_tap ty = tf1 ? tap_tf1(oy, h, hout) : tap_half_pixel(oy, h, hout);
                    struct rs_tap tx = tf1 ? tap_tf1(ox, w, wout) : tap_half_pixel(ox, w, wout);
                    bad += !same_f(resize_px(in + pl * h * w, w, ty, tx, tf1, ma[mi][0], ma[mi][1]), ref[i]);
                }
            }
            for (int d = 0; d < hout; d++) {
                struct rs_tap t = tf1 ? tap_tf1(d, h, hout) : tap_half_pixel(d, h, hout);
                struct ref_tap r = tf1 ? ref_tap_tf1(d, h, hout) : ref_tap_half_pixel(d, h, hout);
                bad_tap += t.lo != r.lo || t.hi != r.hi || !same_f(t.w0, r.w0) || !same_f(t.w1, r.w1) ||
                           t.lo < 0 || t.hi >= h || t.lo > t.hi;
            }
            ok(!bad && !bad_tap, "resize %s %dx%d -> %dx%d: taps and values (3 mul/add pairs) as the CPU",
               tf1 ? "tf1" : "half-pixel", h, w, hout, wout);
            free(in);
            free(ref);
        }

    /* v*mul + add is not fused: fusing it gives other bits for some v */
    int differs = 0;
    for (int i = 0; i < 10000 && !differs; i++) {
        float v = unif();
        differs = !same_f(fmaf(v, 2.0f / 3.0f, -1.0f / 3.0f), v * (2.0f / 3.0f) + (-1.0f / 3.0f));
    }
    ok(differs, "resize data tells fused from unfused mul/add");
}

int main(void)
{
    test_reflpad();
    test_act();
    test_loss();
    test_norms();
    test_adam();
    test_sumsq();
    test_pool();
    test_resize();
    printf("1..%d\n", n_tests);
    return n_failed ? 1 : 0;
}
