/*
 * test_ops_math: the per-element math of the CUDA backend's kernels
 * (lib/cuda/ops-math.cuh, and norm.cuh / reduce.cuh, whose block is one
 * thread on the host), run on the CPU and assembled into whole ops as the
 * kernels assemble them, against the CPU backend's own ops called through
 * the public API (lib/backend/layers.h, layers-pool.h, optim.h; sumsq through the
 * vtable).  No GPU is touched: this checks the index logic, the edge cases
 * and the float operation order on any machine with nvcc; the device side
 * differs only in the _rn intrinsics behind ops-math's f_* / d_* wrappers
 * and in the order of its block reductions.  Everything that the CPU
 * computes in a fixed order is compared bit for bit (the CPU backend runs
 * on one OpenMP thread here, so its loss sum is sequential too).  TAP
 * output.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "norm.cuh" /* and reduce.cuh, ops-math.cuh */

extern "C" {
#include "backend/backend-impl.h" /* the sumsq entry, which optim.h only uses inside clip_grad_norm */
#include "base/err.h"
#include "nn/optim.h"
}

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

/* The CPU backend, and a check that one of its ops succeeded. */
static backend_t cpu;

static void cpu_ok(int rc, const char *op)
{
    if (rc) {
        printf("Bail out! cpu %s: %s\n", op, err_msg());
        exit(1);
    }
}
#define CPU(call) cpu_ok((call), #call)

static float *floats(long n)
{
    float *p = (float *)malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!p) {
        printf("Bail out! out of memory\n");
        exit(1);
    }
    return p;
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
// reflection padding

static void test_reflpad(void)
{
    /* the CPU's reflection, read off its padding of an n x n plane that
     * holds each pixel's own index, padded by n-1: every |i| < n */
    int bad = 0;
    for (int n = 1; n <= 12; n++) {
        int pad = n - 1, no = n + 2 * pad;
        float in[12 * 12], out[34 * 34];
        for (int i = 0; i < n * n; i++)
            in[i] = (float)i;
        CPU(reflpad_forward(cpu, out, in, 1, n, n, pad));
        for (int oy = 0; oy < no; oy++)
            for (int ox = 0; ox < no; ox++)
                bad +=
                    out[oy * no + ox] != (float)(reflect_index(oy - pad, n) * n + reflect_index(ox - pad, n));
    }
    ok(!bad, "reflect_index matches the CPU's reflection for |i| < n");

    static const int shapes[][4] = {{2, 1, 1, 0}, {1, 2, 3, 1},   {3, 5, 4, 3}, {2, 7, 7, 3},  {1, 4, 9, 3},
                                    {1, 3, 3, 2}, {2, 16, 16, 3}, {1, 2, 2, 1}, {2, 9, 5, 4},  {1, 64, 64, 3},
                                    {1, 8, 3, 2}, {2, 6, 6, 5},   {1, 4, 4, 3}, {3, 33, 17, 1}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int planes = shapes[si][0], h = shapes[si][1], w = shapes[si][2], pad = shapes[si][3];
        int ho = h + 2 * pad, wo = w + 2 * pad;
        long nin = (long)planes * h * w, nout = (long)planes * ho * wo;
        float *in = floats(nin), *out = floats(nout), *ref = floats(nout), *din = floats(nin);
        fill(in, nin, 1);
        CPU(reflpad_forward(cpu, ref, in, planes, h, w, pad));
        /* the kernel's gather */
        for (long i = 0; i < nout; i++) {
            int ox = (int)(i % wo), oy = (int)(i / wo % ho);
            long pl = i / wo / ho;
            out[i] = in[(pl * h + reflect_index(oy - pad, h)) * w + reflect_index(ox - pad, w)];
        }
        ok(memcmp(out, ref, sizeof(float) * nout) == 0, "reflpad forward %dx%dx%d pad %d", planes, h, w, pad);

        fill(out, nout, 0); /* dout: finite, mixed magnitudes, signed zeros */
        CPU(reflpad_backward(cpu, din, out, planes, h, w, pad));
        int bwd_bad = 0;
        for (long i = 0; i < nin; i++) {
            int ix = (int)(i % w), iy = (int)(i / w % h);
            long pl = i / w / h;
            bwd_bad += !same_f(reflpad_grad(out + pl * ho * wo, h, w, pad, iy, ix), din[i]);
        }
        ok(!bwd_bad, "reflpad backward (gather) %dx%dx%d pad %d bit for bit with the CPU's scatter", planes,
           h, w, pad);
        free(in);
        free(out);
        free(ref);
        free(din);
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
// activations

static void test_act(void)
{
    static const char *names[] = {"relu", "lrelu", "tanh"};
    /* every pair (x, g) of specials (NaN, +-0, +-inf, subnormals ...), then
     * random pairs; the backward works from y = the forward of x */
    const long npairs = (long)N_SPECIALS * N_SPECIALS, n = npairs + 100000;
    float *x = floats(n), *g = floats(n), *y = floats(n), *yref = floats(n), *d = floats(n),
          *dref = floats(n);
    for (int kind = ACT_RELU; kind <= ACT_TANH; kind++) {
        enum act_kind k = (enum act_kind)kind;
        for (long i = 0; i < n; i++) {
            x[i] = i < npairs ? specials[i / N_SPECIALS] : rnd_float(1);
            g[i] = i < npairs ? specials[i % N_SPECIALS] : rnd_float(1);
        }
        for (long i = 0; i < n; i++)
            y[i] = act_fwd(x[i], k);
        CPU(act_forward(cpu, yref, x, n, k));
        for (long i = 0; i < n; i++)
            d[i] = act_bwd(g[i], y[i], k);
        CPU(act_backward(cpu, dref, g, y, n, k));
        ok(memcmp(y, yref, sizeof(float) * n) == 0,
           "%s forward matches the CPU (specials, NaN, +-0, +-inf, subnormals)", names[kind]);
        ok(memcmp(d, dref, sizeof(float) * n) == 0, "%s backward from the output matches the CPU",
           names[kind]);
    }
    free(x);
    free(g);
    free(y);
    free(yref);
    free(d);
    free(dref);
    ok(act_fwd(NAN, ACT_RELU) == 0.0f && act_bwd(1.0f, NAN, ACT_RELU) == 0.0f &&
           act_bwd(1.0f, 0.0f, ACT_RELU) == 0.0f && act_bwd(1.0f, -0.0f, ACT_LRELU) == ACT_LRELU_SLOPE,
       "relu maps NaN to 0; the derivative at 0 is the negative side's");
    ok(isnan(act_fwd(NAN, ACT_LRELU)) && isnan(act_fwd(NAN, ACT_TANH)), "lrelu and tanh propagate NaN");
    ok(act_fwd(-1.0f, ACT_LRELU) == -1.0f * 0.2f && same_f(act_fwd(-0.0f, ACT_LRELU), -0.0f),
       "lrelu negative slope 0.2 (float), -0 stays -0");
}

// ----------------------------------------------------------------------------
// means and losses

static void test_loss(void)
{
    static const long sizes[] = {1, 2, 7, 900, 1000, 65537};
    static const float tvs[] = {0.0f, 1.0f, -1.0f, 0.9f};
    static const float scales[] = {1.0f, 10.0f, 0.5f, 0.1f, -3.0f};
    for (int kind = LOSS_MSE; kind <= LOSS_L1; kind++) {
        enum loss_kind lk = (enum loss_kind)kind;
        const char *name = kind == LOSS_MSE ? "mse" : "l1";
        int bad_val = 0, bad_k = 0, bad_g = 0;
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            long n = sizes[si];
            float *x = floats(n), *t = floats(n), *dx = floats(n), *dref = floats(n);
            fill(x, n, 0);
            fill(t, n, 0);
            for (long i = 0; i < n; i += 5)
                t[i] = x[i]; /* d = 0: sign(0) = 0 for L1 */
            /* the CPU's k, read off its backward where x - t = 1: dx = 0 + k */
            for (size_t ki = 0; ki < sizeof scales / sizeof scales[0]; ki++) {
                for (long i = 0; i < n; i++)
                    dx[i] = 1.0f, dref[i] = 0.0f;
                CPU(loss_backward(cpu, dref, dx, NULL, 0.0f, scales[ki], n, lk));
                bad_k += !same_f(loss_grad_coef(scales[ki], n, lk), dref[0]);
            }
            for (int ti = 0; ti < 5; ti++) {
                const float *tg = ti == 4 ? t : NULL;
                float tv = ti < 4 ? tvs[ti] : 0.0f, val;
                double s = 0.0; /* the device's per-thread order: sequential */
                for (long i = 0; i < n; i++)
                    s = d_add(s, loss_term(x[i], tg ? tg[i] : tv, lk));
                CPU(loss_forward(cpu, &val, x, tg, tv, n, lk));
                bad_val += !same_f(mean_of(s, n), val);
                for (size_t ki = 0; ki < sizeof scales / sizeof scales[0]; ki++) {
                    float k = loss_grad_coef(scales[ki], n, lk);
                    fill(dx, n, 0);
                    memcpy(dref, dx, sizeof(float) * n);
                    CPU(loss_backward(cpu, dref, x, tg, tv, scales[ki], n, lk));
                    for (long i = 0; i < n; i++)
                        dx[i] = loss_grad_acc(dx[i], x[i], tg ? tg[i] : tv, k, lk);
                    bad_g += memcmp(dx, dref, sizeof(float) * n) != 0;
                }
            }
            free(x);
            free(t);
            free(dx);
            free(dref);
        }
        ok(!bad_val,
           "%s loss value (float)(sum / n), terms summed in order, matches the CPU (target array "
           "and constant)",
           name);
        ok(!bad_k, "%s gradient coefficient k = c*scale/(float)n matches the CPU's", name);
        ok(!bad_g, "%s backward accumulates dx += ... bit for bit", name);
    }
    float dx = 1.0f;
    dx = loss_grad_acc(dx, 2.0f, 2.0f, 0.25f, LOSS_L1);
    float dn = loss_grad_acc(1.0f, NAN, 0.0f, 0.25f, LOSS_L1);
    float dm = loss_grad_acc(1.0f, -0.0f, 0.0f, 0.25f, LOSS_MSE);
    ok(dx == 1.0f && dn == 1.0f && dm == 1.0f, "L1 sign(0) = sign(NaN) = 0; the backward accumulates");
    ok(isnan(loss_term(NAN, 0.0f, LOSS_MSE)) && isinf(loss_term(INFINITY, 0.0f, LOSS_L1)),
       "loss terms propagate NaN and inf");

    /* mean rows: 20 rows of m values, one dout per row */
    enum { ROWS = 20 };
    int bad = 0;
    for (long m = 1; m < 2000; m = m * 3 + 1) {
        float *x = floats(ROWS * m), *din = floats(ROWS * m), *dref = floats(ROWS * m);
        float mean[ROWS], mref[ROWS], dout[ROWS];
        fill(x, ROWS * m, 0);
        fill(dout, ROWS, 1);
        for (int r = 0; r < ROWS; r++) {
            double s = 0.0;
            for (long j = 0; j < m; j++)
                s = d_add(s, (double)x[r * m + j]);
            mean[r] = mean_of(s, m);
        }
        for (long i = 0; i < ROWS * m; i++)
            din[i] = mean_grad(dout[i / m], m);
        CPU(mean_forward(cpu, mref, x, ROWS, m));
        CPU(mean_backward(cpu, dref, dout, ROWS, m));
        bad += memcmp(mean, mref, sizeof mean) != 0 || memcmp(din, dref, sizeof(float) * ROWS * m) != 0;
        free(x);
        free(din);
        free(dref);
    }
    ok(!bad, "mean rows: (float)(sum / m) and the backward dout / (float)m match");
}

// ----------------------------------------------------------------------------
// norms: norm.cuh's per-group code, its block one thread

static void test_norms(void)
{
    static const int shapes[][3] = {{1, 3, 1}, {2, 4, 9}, {4, 2, 16}, {1, 8, 64}, {3, 5, 7}, {2, 1, 1000}};
    const double eps = 1e-5, momentum = 0.1;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int n = shapes[si][0], c = shapes[si][1], hw = shapes[si][2];
        long total = (long)n * c * hw;
        float *in = floats(total), *dout = floats(total), *out = floats(total), *ref = floats(total);
        float *din = floats(total), *dref = floats(total);
        float gamma[16], beta[16], rm[16], rv[16], rm_ref[16], rv_ref[16], mean[16], rstd[16], mref[16],
            sref[16];
        float dg[16], db[16], dg_ref[16], db_ref[16];
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
                for (int ch = 0; ch < c; ch++)
                    bn_forward_channel(out, mean, rstd, in, g, b, rm, rv, n, c, hw, training, momentum, eps,
                                       ch, NULL);
                CPU(batchnorm_forward(cpu, ref, mref, sref, in, g, b, rm_ref, rv_ref, n, c, hw, training,
                                      momentum, eps));
                ok(memcmp(out, ref, sizeof(float) * total) == 0 &&
                       memcmp(mean, mref, sizeof(float) * c) == 0 &&
                       memcmp(rstd, sref, sizeof(float) * c) == 0 &&
                       memcmp(rm, rm_ref, sizeof(float) * c) == 0 &&
                       memcmp(rv, rv_ref, sizeof(float) * c) == 0,
                   "batchnorm forward n%d c%d hw%d %s%s: out, mean, rstd, running stats", n, c, hw,
                   training ? "training" : "eval", affine ? " affine" : "");

                for (int ch = 0; ch < c; ch++)
                    bn_backward_channel(din, dg, db, dout, in, mean, rstd, g, n, c, hw, training, ch, NULL);
                CPU(batchnorm_backward(cpu, dref, dg_ref, db_ref, dout, in, mref, sref, g, n, c, hw,
                                       training));
                ok(memcmp(din, dref, sizeof(float) * total) == 0 &&
                       memcmp(dg, dg_ref, sizeof(float) * c) == 0 &&
                       memcmp(db, db_ref, sizeof(float) * c) == 0,
                   "batchnorm backward n%d c%d hw%d %s%s: din, dgamma += and dbeta +=", n, c, hw,
                   training ? "training" : "eval", affine ? " affine" : "");
            }

        /* instance norm over the n*c planes */
        int planes = n * c;
        for (int pl = 0; pl < planes; pl++)
            in_forward_plane(out, mean, rstd, in, hw, eps, pl, NULL);
        CPU(instnorm_forward(cpu, ref, mref, sref, in, planes, hw, eps));
        ok(memcmp(out, ref, sizeof(float) * total) == 0 && memcmp(mean, mref, sizeof(float) * planes) == 0 &&
               memcmp(rstd, sref, sizeof(float) * planes) == 0,
           "instnorm forward %d planes of %d: out, mean, rstd", planes, hw);
        for (int pl = 0; pl < planes; pl++)
            in_backward_plane(din, dout, in, mean, rstd, hw, pl, NULL);
        CPU(instnorm_backward(cpu, dref, dout, in, mref, sref, planes, hw));
        ok(memcmp(din, dref, sizeof(float) * total) == 0, "instnorm backward %d planes of %d", planes, hw);
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
// Adam

static void test_adam(void)
{
    enum { N = 20000 };
    static float p[N], g[N], m[N], v[N], pr[N];
    static const double cfg[][5] = {
        /* lr, beta1, beta2, eps, weight_decay */
        {2e-4, 0.5, 0.999, 1e-8, 0.0},
        {1e-3, 0.9, 0.999, 1e-8, 1e-2},
        {0.1, 0.0, 0.99, 1e-6, 0.0},
        {5e-5, 0.5, 0.999, 1e-8, 5e-4},
    };
    for (size_t ci = 0; ci < sizeof cfg / sizeof cfg[0]; ci++) {
        const double *c = cfg[ci];
        struct adam *opt = adam_new(cpu, N, c[0], c[1], c[2], c[3], c[4]);
        cpu_ok(!opt, "adam_new");
        for (long i = 0; i < N; i++) {
            p[i] = pr[i] = unif() * (i % 7 == 0 ? 10.0f : 0.1f);
            m[i] = 0.0f;
            v[i] = 0.0f;
        }
        int bad = 0;
        for (long step = 1; step <= 30; step++) {
            for (long i = 0; i < N; i++)
                g[i] = i % 11 == 0 ? 0.0f : i % 13 == 0 ? -0.0f : unif() * (i % 5 == 0 ? 1e-4f : 1.0f);
            struct adam_scalars s = adam_scalars_of(c[0], c[1], c[2], c[3], c[4], step);
            for (long i = 0; i < N; i++)
                adam_update(&p[i], g[i], &m[i], &v[i], &s);
            CPU(adam_step(opt, pr, g));
            /* the CPU backend's device slabs are host memory */
            bad += memcmp(p, pr, sizeof p) != 0 || memcmp(m, opt->exp_avg, sizeof m) != 0 ||
                   memcmp(v, opt->exp_avg_sq, sizeof v) != 0;
        }
        adam_free(opt);
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
// sums of squares (the vtable's sumsq: optim.h only uses it inside clip_grad_norm)

static void test_sumsq(void)
{
    static const long sizes[] = {0,    1,     31,    32, 33,           64,     100, 8191,           8192,
                                 8193, 16384, 16385, 0,  3 * 8192 + 5, 100000, 7,   256 * 8192 + 1, 2 * 8192,
                                 5,    1};
    const int count = (int)(sizeof sizes / sizeof sizes[0]);
    long total = 0;
    for (int r = 0; r < count; r++)
        total += sizes[r];
    float *x = floats(total);
    fill(x, total, 0);
    for (long i = 0; i < total; i += 97)
        x[i] *= 1e6f; /* large terms make the order visible */
    double ref[32], got[32];
    CPU(cpu->iface->sumsq(cpu, ref, x, sizes, count));

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
    int rbig = 0;
    for (; rbig < count && sizes[rbig] != big; rbig++)
        off += sizes[rbig];
    ok(rbig < count && !same_d(sumsq_seq(x + off, sizes[rbig]), ref[rbig]),
       "sumsq data tells blocked from unblocked summation");
    free(part);
    free(x);
}

// ----------------------------------------------------------------------------
// pooling

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
            const int n = 2, c = 2;
            CPU(pool2d_shape_init(&s, n, c, geo[gi][0], geo[gi][1], geo[gi][2], geo[gi][3], geo[gi][4],
                                  (enum pool_kind)kind));
            s.out_bstride += 3; /* gaps between the images' outputs, left alone */
            long hwi = (long)s.h * s.w, hwo = (long)s.hout * s.wout, nout = n * s.out_bstride;
            float *x = floats(n * c * hwi), *o = floats(nout), *ref = floats(nout);
            fill(x, n * c * hwi, kind == POOL_MAX); /* NaN and inf for max */
            for (long i = 0; i < nout; i++)
                o[i] = ref[i] = 0.123456f;
            CPU(pool2d_forward(cpu, ref, x, &s));
            int bad_div = 0;
            /* the kernel's threads: one per output value */
            for (long i = 0; i < n * c * hwo; i++) {
                int ox = (int)(i % s.wout), oy = (int)(i / s.wout % s.hout);
                long pl = i / hwo;
                o[pl / c * s.out_bstride + pl % c * hwo + (long)oy * s.wout + ox] =
                    pool_out(x + pl * hwi, &s, oy, ox);
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
            ok(memcmp(o, ref, sizeof(float) * nout) == 0 && !bad_div,
               "pool %s %dx%d k%d s%d p%d: every output and divisor as the CPU", names[kind], s.h, s.w, s.k,
               s.stride, s.pad);
            free(x);
            free(o);
            free(ref);
        }

    struct pool_shape s;
    CPU(pool2d_shape_init(&s, 1, 1, 3, 3, 3, 1, 1, POOL_MAX));
    float x[9] = {NAN, 2, 3, 4, 5, 6, 7, 8, 9};
    ok(isnan(pool_out(x, &s, 0, 0)) && isnan(pool_out(x, &s, 1, 1)) && pool_out(x, &s, 2, 2) == 9.0f &&
           pool_out(x, &s, 0, 2) == 6.0f,
       "max pool: NaN in the window wins, padding never does");
    float y[9] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY,
                  -INFINITY, -INFINITY, -INFINITY, -1.0f};
    ok(pool_out(y, &s, 0, 0) == -INFINITY && pool_out(y, &s, 2, 2) == -1.0f, "max pool of -inf stays -inf");
}

// ----------------------------------------------------------------------------
// bilinear resize

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
            float *in = floats(nin), *out = floats(nout), *ref = floats(nout);
            for (long i = 0; i < nin; i++)
                in[i] = tf1 ? (float)(rnd() % 256) : unif();
            int bad = 0, bad_tap = 0;
            for (size_t mi = 0; mi < sizeof ma / sizeof ma[0]; mi++) {
                CPU(resize_bilinear_forward(cpu, ref, in, planes, h, w, hout, wout,
                                            tf1 ? RESIZE_TF1 : RESIZE_HALF_PIXEL, ma[mi][0], ma[mi][1]));
                /* the kernel's threads: one per output value */
                for (long i = 0; i < nout; i++) {
                    int ox = (int)(i % wout), oy = (int)(i / wout % hout);
                    long pl = i / wout / hout;
                    struct rs_tap ty = tf1 ? tap_tf1(oy, h, hout) : tap_half_pixel(oy, h, hout);
                    struct rs_tap tx = tf1 ? tap_tf1(ox, w, wout) : tap_half_pixel(ox, w, wout);
                    out[i] = resize_px(in + pl * h * w, w, ty, tx, tf1, ma[mi][0], ma[mi][1]);
                }
                bad += memcmp(out, ref, sizeof(float) * nout) != 0;
            }
            for (int d = 0; d < hout; d++) {
                struct rs_tap t = tf1 ? tap_tf1(d, h, hout) : tap_half_pixel(d, h, hout);
                bad_tap += t.lo < 0 || t.hi >= h || t.lo > t.hi;
            }
            ok(!bad && !bad_tap,
               "resize %s %dx%d -> %dx%d: values (3 mul/add pairs) as the CPU, taps in range",
               tf1 ? "tf1" : "half-pixel", h, w, hout, wout);
            free(in);
            free(out);
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

// ----------------------------------------------------------------------------
// clip_grad_norm_ on the device (clip.cu): the runs' sums (cu_sumsq's, checked
// above) -> clip_total_norm -> clip_coef -> x *= coef unless coef is 1,
// against lib/nn/optim.c's clip_grad_norm over two slabs

static void test_clip(void)
{
    static const long sz0[] = {300, 7, 9000, 1}, sz1[] = {20000, 64, 3};
    const long *sizes[2] = {sz0, sz1};
    const int counts[2] = {4, 3};
    const double max_norms[] = {0.5, 1.0, 1e9, INFINITY};
    int bad_norm = 0, bad_grad = 0, clipped = 0;
    for (int mi = 0; mi < 4; mi++)
        for (int scale = 0; scale < 3; scale++) {
            float *g[2], *ref[2];
            struct grad_slab slabs[2];
            long n[2] = {0, 0};
            double sums[8];
            int r = 0;
            for (int s = 0; s < 2; s++) {
                for (int i = 0; i < counts[s]; i++)
                    n[s] += sizes[s][i];
                g[s] = floats(n[s]), ref[s] = floats(n[s]);
                fill(g[s], n[s], 0);
                for (long i = 0; i < n[s]; i++)
                    g[s][i] *= scale == 0 ? 1e-4f : scale == 1 ? 1.0f : 30.0f;
                if (scale == 2 && s == 1)
                    g[s][5] = NAN; /* a NaN gradient makes the coefficient NaN on both sides */
                memcpy(ref[s], g[s], sizeof(float) * n[s]);
                slabs[s] = (struct grad_slab){ref[s], sizes[s], counts[s]};
                CPU(cpu->iface->sumsq(cpu, sums + r, g[s], sizes[s], counts[s]));
                r += counts[s];
            }
            float want;
            CPU(clip_grad_norm(cpu, slabs, 2, max_norms[mi], &want));
            float total = clip_total_norm(sums, r), coef = clip_coef(total, (float)max_norms[mi]);
            clipped += coef < 1.0f;
            for (int s = 0; s < 2; s++) {
                if (coef != 1.0f)
                    for (long i = 0; i < n[s]; i++)
                        g[s][i] = f_mul(g[s][i], coef);
                bad_grad |= memcmp(g[s], ref[s], sizeof(float) * n[s]) != 0;
                free(g[s]), free(ref[s]);
            }
            bad_norm |= !same_f(total, want);
        }
    ok(!bad_norm,
       "clip total norm (float norms of the runs, double sum, float sqrt) equals clip_grad_norm's");
    ok(!bad_grad,
       "clip coefficient and scaling equal clip_grad_norm's bit for bit (incl. no clip, inf, NaN)");
    ok(clipped >= 4, "the clip cases include clipping (%d of 12)", clipped);
}

int main(void)
{
    omp_set_num_threads(1); /* the CPU's reductions in plain order (loss_forward's OpenMP sum) */
    cpu = backend_cpu_init();
    if (!cpu) {
        printf("Bail out! backend_cpu_init: %s\n", err_msg());
        return 1;
    }
    test_reflpad();
    test_act();
    test_loss();
    test_norms();
    test_adam();
    test_sumsq();
    test_clip();
    test_pool();
    test_resize();
    backend_free(cpu);
    printf("1..%d\n", n_tests);
    return n_failed ? 1 : 0;
}
