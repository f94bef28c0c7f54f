/*
 * ops-math: the per-element arithmetic of the CUDA backend's non-convolution
 * ops (padding, norms, activations, losses, Adam, sums of squares, pooling,
 * resize), written once as __host__ __device__ functions.  The kernels call
 * them on the GPU; tests/cuda/test_ops_math.cu calls the very same code on
 * the CPU and compares the results with the CPU backend's own ops
 * (lib/cpu/backend-cpu*.c, linked in), so the index logic and the float
 * operation order are checked on machines without a GPU.
 *
 * Why the f_* / d_* wrappers: nvcc contracts a*b+c into a fused
 * multiply-add by default, while the CPU backend is compiled with -std=c11
 * (no contraction) and calls fmaf only where PyTorch fuses.  On the device
 * the wrappers are the _rn intrinsics, which are never contracted and round
 * to nearest whatever -fmad, -prec-div or -prec-sqrt say (subnormals need
 * nvcc's default -ftz=false, as the CPU keeps them); on the host they are
 * the plain operators (x86-64 without -mfma cannot contract).  So wherever the
 * CPU computes in float, GPU == CPU bit for bit as long as both see the same
 * operands; what still differs is the summation order of the reductions
 * (done in double on both sides) and tanhf, whose CUDA and glibc versions
 * are both within 2 ulp but not the same function.
 */
#pragma once

#include <math.h>
#include <stddef.h>

extern "C" {
#include "backend/layers-pool.h"
#include "backend/layers.h"
}

#define OPS_HD static __host__ __device__ inline

// ----------------------------------------------------------------------------
// arithmetic nvcc may neither contract nor approximate

/* OPS_RN(device, host): the _rn intrinsic in nvcc's device pass, the plain
 * operator or libm call in its host pass (__CUDA_ARCH__ is defined only in
 * the device pass). */
#ifdef __CUDA_ARCH__
#define OPS_RN(device, host) (device)
#else
#define OPS_RN(device, host) (host)
#endif

/* name(a, b) / name(a) of type T: the intrinsic rn on the device, the
 * operator op or the libm function on the host. */
#define OPS_BINARY(name, T, rn, op)                                                                          \
    OPS_HD T name(T a, T b)                                                                                  \
    {                                                                                                        \
        return OPS_RN(rn(a, b), a op b);                                                                     \
    }
#define OPS_UNARY(name, T, rn, libm)                                                                         \
    OPS_HD T name(T a)                                                                                       \
    {                                                                                                        \
        return OPS_RN(rn(a), libm(a));                                                                       \
    }

OPS_BINARY(f_add, float, __fadd_rn, +)
OPS_BINARY(f_sub, float, __fsub_rn, -)
OPS_BINARY(f_mul, float, __fmul_rn, *)
OPS_BINARY(f_div, float, __fdiv_rn, /)
OPS_UNARY(f_sqrt, float, __fsqrt_rn, sqrtf)
OPS_BINARY(d_add, double, __dadd_rn, +)
OPS_BINARY(d_sub, double, __dsub_rn, -)
OPS_BINARY(d_mul, double, __dmul_rn, *)
OPS_BINARY(d_div, double, __ddiv_rn, /)
OPS_UNARY(d_sqrt, double, __dsqrt_rn, sqrt)

OPS_HD float f_fma(float a, float b, float c)
{
    return OPS_RN(__fmaf_rn(a, b, c), fmaf(a, b, c));
}

// ----------------------------------------------------------------------------
// reflection padding

/* PyTorch's reflection of index i into [0, n) (|i| < n, as pad < h, w). */
OPS_HD int reflect_index(int i, int n)
{
    if (i < 0)
        return -i;
    if (i >= n)
        return 2 * n - 2 - i;
    return i;
}

/* Adds to acc, in the CPU backward's order (left border loop, centre, right
 * border loop), the entries of padded row s that copied column ix. */
OPS_HD float reflpad_grad_row(const float *s, int w, int pad, int ix, float acc)
{
    if (ix >= 1 && ix <= pad)
        acc = f_add(acc, s[pad - ix]);
    acc = f_add(acc, s[pad + ix]);
    if (ix >= w - 1 - pad && ix <= w - 2)
        acc = f_add(acc, s[pad + w + (w - 2 - ix)]);
    return acc;
}

/* din[iy][ix] of one plane: the sum of the dout entries (plane [h+2p, w+2p])
 * that copied input pixel (iy, ix), gathered instead of scattered but added
 * in the CPU's order (padded rows ascending: top reflection, centre, bottom
 * reflection; within a row as reflpad_grad_row), starting from +0 as the
 * CPU's memset, so the float sums agree bit for bit. */
OPS_HD float reflpad_grad(const float *dout, int h, int w, int pad, int iy, int ix)
{
    long wo = (long)w + 2 * pad;
    float acc = 0.0f;
    if (iy >= 1 && iy <= pad)
        acc = reflpad_grad_row(dout + (long)(pad - iy) * wo, w, pad, ix, acc);
    acc = reflpad_grad_row(dout + (long)(iy + pad) * wo, w, pad, ix, acc);
    if (iy >= h - 1 - pad && iy <= h - 2)
        acc = reflpad_grad_row(dout + (long)(2 * h - 2 - iy + pad) * wo, w, pad, ix, acc);
    return acc;
}

// ----------------------------------------------------------------------------
// activations (backward from the forward output, so in place works)

OPS_HD float act_fwd(float x, enum act_kind kind)
{
    switch (kind) {
    case ACT_RELU: return x > 0 ? x : 0.0f;
    case ACT_LRELU: return x > 0 ? x : f_mul(x, ACT_LRELU_SLOPE);
    case ACT_TANH: return tanhf(x);
    }
    return x;
}

OPS_HD float act_bwd(float g, float y, enum act_kind kind)
{
    switch (kind) {
    case ACT_RELU: return y > 0 ? g : 0.0f;
    case ACT_LRELU: return y > 0 ? g : f_mul(g, ACT_LRELU_SLOPE);
    case ACT_TANH: return f_mul(g, f_sub(1.0f, f_mul(y, y)));
    }
    return g;
}

// ----------------------------------------------------------------------------
// losses and means

/* One term of the loss sum, in double as the CPU: d = x - t, d*d or |d|. */
OPS_HD double loss_term(float x, float t, enum loss_kind kind)
{
    double d = d_sub((double)x, (double)t);
    return kind == LOSS_MSE ? d_mul(d, d) : fabs(d);
}

/* The CPU's k = (MSE ? 2 : 1) * scale / (float)n, in float. */
OPS_HD float loss_grad_coef(float scale, long n, enum loss_kind kind)
{
    return f_div(f_mul(kind == LOSS_MSE ? 2.0f : 1.0f, scale), (float)n);
}

/* dx + k*d (MSE) or dx + sign(d)*k with sign(0) = sign(NaN) = 0 (L1). */
OPS_HD float loss_grad_acc(float dx, float x, float t, float k, enum loss_kind kind)
{
    float d = f_sub(x, t);
    if (kind == LOSS_MSE)
        return f_add(dx, f_mul(k, d));
    return f_add(dx, d > 0 ? k : d < 0 ? -k : 0.0f);
}

/* (float)(sum / count): the mean of a row, the loss value. */
OPS_HD float mean_of(double sum, long count)
{
    return (float)d_div(sum, (double)count);
}

/* mean_backward: every entry of row i gets dout[i] / (float)m. */
OPS_HD float mean_grad(float g, long m)
{
    return f_div(g, (float)m);
}

// ----------------------------------------------------------------------------
// norms (lib/cpu/backend-cpu.c plane_stats, batchnorm, instnorm, norm_backward_group)

OPS_HD double var_term(float x, double m)
{
    double d = d_sub((double)x, m);
    return d_mul(d, d);
}

/* 1 / sqrt(var + eps) in double. */
OPS_HD double rstd_of(double var, double eps)
{
    return d_div(1.0, d_sqrt(d_add(var, eps)));
}

/* Batchnorm's affine: a = r*gamma, b = beta - m*a (double), then cast. */
OPS_HD void bn_coefs(double m, double r, double gamma, double beta, float *a, float *b)
{
    double da = d_mul(r, gamma);
    *a = (float)da;
    *b = (float)d_sub(beta, d_mul(m, da));
}

/* Instance norm's affine: a = r, b = -m*r (not 0 - m*r: the sign of a zero
 * b would differ). */
OPS_HD void in_coefs(double m, double r, float *a, float *b)
{
    *a = (float)r;
    *b = (float)d_mul(-m, r);
}

OPS_HD float norm_apply(float x, float a, float b)
{
    return f_add(f_mul(x, a), b);
}

/* momentum*m + (1-momentum)*run_mean */
OPS_HD float bn_run_mean(double momentum, double m, float run_mean)
{
    return (float)d_add(d_mul(momentum, m), d_mul(d_sub(1.0, momentum), (double)run_mean));
}

/* momentum*v*cnt/(cnt-1) + (1-momentum)*run_var: the running variance is the unbiased one */
OPS_HD float bn_run_var(double momentum, double v, long cnt, float run_var)
{
    double unb = d_div(d_mul(d_mul(momentum, v), (double)cnt), (double)(cnt - 1));
    return (float)d_add(unb, d_mul(d_sub(1.0, momentum), (double)run_var));
}

/* xhat = (x - m) * r in float, as the backward recomputes it */
OPS_HD float norm_xhat(float x, float m, float r)
{
    return f_mul(f_sub(x, m), r);
}

/* din = k * (g - mg - (x - m) * r * mgx) with k = r*gamma, mg = mean(g),
 * mgx = mean(g*xhat) (both 0 outside training). */
OPS_HD float norm_din(float g, float x, float m, float r, float k, float mg, float mgx)
{
    return f_mul(k, f_sub(f_sub(g, mg), f_mul(norm_xhat(x, m, r), mgx)));
}

// ----------------------------------------------------------------------------
// Adam (lib/backend/backend-impl.h, lib/cpu/backend-cpu-optim.c)

struct adam_scalars {
    float neg_step_size, bc2_sqrt, wd, b1, b2, c1, c2, eps;
    int use_wd;
};

/* The Python-side scalars in double, cast once to float (host only: pow). */
static inline struct adam_scalars adam_scalars_of(double lr, double beta1, double beta2, double eps,
                                                  double weight_decay, long step)
{
    double bc1 = 1.0 - pow(beta1, (double)step);
    double bc2 = 1.0 - pow(beta2, (double)step);
    struct adam_scalars s;
    s.neg_step_size = (float)(-(lr / bc1));
    s.bc2_sqrt = (float)sqrt(bc2);
    s.wd = (float)weight_decay;
    s.b1 = (float)beta1;
    s.b2 = (float)beta2;
    s.c1 = (float)(1.0 - beta1);
    s.c2 = (float)(1.0 - beta2);
    s.eps = (float)eps;
    s.use_wd = weight_decay != 0;
    return s;
}

/* One element, fmaf exactly where torch fuses and nowhere else. */
OPS_HD void adam_update(float *param, float grad, float *exp_avg, float *exp_avg_sq,
                        const struct adam_scalars *s)
{
    float p = *param;
    float g = s->use_wd ? f_fma(p, s->wd, grad) : grad;
    float m = f_fma(g, s->c1, f_mul(*exp_avg, s->b1));
    float v = f_fma(f_mul(s->c2, g), g, f_mul(*exp_avg_sq, s->b2));
    *exp_avg = m;
    *exp_avg_sq = v;
    float denom = f_add(f_div(f_sqrt(v), s->bc2_sqrt), s->eps);
    *param = f_add(p, f_div(f_mul(s->neg_step_size, m), denom));
}

// ----------------------------------------------------------------------------
// sums of squares (cpu_sumsq): runs cut into segments of SUMSQ_SEG floats,
// each summed sequentially in double, the segment sums then added in order
// from 0, exactly the CPU's blocks, so GPU == CPU bit for bit.  A run of
// n <= SUMSQ_SEG floats (0 included) is one segment.

#define SUMSQ_SEG   8192 /* = SUMSQ_BLOCK of lib/cpu/backend-cpu-optim.c */
#define SUMSQ_BATCH 32   /* loads issued together before they are summed in order */
#define SUMSQ_AHEAD 128  /* floats prefetched ahead into L2 (the device's one thread per segment) */

static inline long sumsq_nseg(long n)
{
    return n <= SUMSQ_SEG ? 1 : (n + SUMSQ_SEG - 1) / SUMSQ_SEG;
}

/* The segment table (host): run_off [count+1] = prefix sums of the sizes,
 * seg_first [count+1] = prefix sums of the runs' segment counts.  Returns
 * the number of segments, or -1 on a negative size. */
static inline long sumsq_table(const long *sizes, int count, long *run_off, long *seg_first)
{
    run_off[0] = 0;
    seg_first[0] = 0;
    for (int r = 0; r < count; r++) {
        if (sizes[r] < 0)
            return -1;
        run_off[r + 1] = run_off[r] + sizes[r];
        seg_first[r + 1] = seg_first[r] + sumsq_nseg(sizes[r]);
    }
    return seg_first[count];
}

/* sum of p[j]^2, j ascending; the products of floats are exact in double,
 * so fusing them would not change a bit, but d_add keeps it plain anyway. */
OPS_HD double sumsq_seq(const float *p, long n)
{
    double s = 0.0;
    long j = 0;
    for (; j + SUMSQ_BATCH <= n; j += SUMSQ_BATCH) {
#ifdef __CUDA_ARCH__
        /* a hint only: the serial sum is latency-bound, so keep a few lines coming */
        if (j + SUMSQ_AHEAD < n)
            asm volatile("prefetch.L2 [%0];" ::"l"(p + j + SUMSQ_AHEAD));
#endif
        float v[SUMSQ_BATCH];
#ifdef __CUDA_ARCH__
#pragma unroll /* all loads in flight before the ordered adds */
#endif
        for (int k = 0; k < SUMSQ_BATCH; k++)
            v[k] = p[j + k];
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
        for (int k = 0; k < SUMSQ_BATCH; k++)
            s = d_add(s, d_mul((double)v[k], (double)v[k]));
    }
    for (; j < n; j++)
        s = d_add(s, d_mul((double)p[j], (double)p[j]));
    return s;
}

/* Segment seg of the table: run_off [count+1] (prefix sums of the sizes),
 * seg_first [count+1] (prefix sums of the segment counts, each >= 1).
 * Binary search for the run r with seg_first[r] <= seg < seg_first[r+1]. */
OPS_HD void sumsq_segment(const long *run_off, const long *seg_first, int count, long seg, long *off,
                          long *len)
{
    int lo = 0, hi = count - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (seg_first[mid] <= seg)
            lo = mid;
        else
            hi = mid - 1;
    }
    long start = (seg - seg_first[lo]) * SUMSQ_SEG, n = run_off[lo + 1] - run_off[lo];
    *off = run_off[lo] + start;
    *len = n - start < SUMSQ_SEG ? n - start : SUMSQ_SEG;
}

/* The run's total: its segment sums added in order from 0, as the CPU. */
OPS_HD double sumsq_run_total(const double *part, long first, long end)
{
    double s = 0.0;
    for (long k = first; k < end; k++)
        s = d_add(s, part[k]);
    return s;
}

// ----------------------------------------------------------------------------
// clip_grad_norm_ (lib/nn/optim.c) from the runs' sums of squares: each run's
// norm rounded to float (torch stacks float norms), their squares summed in
// double in order, the total rounded to float; the coefficient in float as
// Tensor.__rtruediv__ computes it, clamped at 1 (NaN stays NaN).

OPS_HD float clip_total_norm(const double *sums, long n)
{
    double acc = 0.0;
    for (long i = 0; i < n; i++) {
        float norm = (float)d_sqrt(sums[i]);
        acc = d_add(acc, d_mul((double)norm, (double)norm));
    }
    return (float)d_sqrt(acc);
}

OPS_HD float clip_coef(float total, float max_norm)
{
    float coef = f_mul(f_div(1.0f, f_add(total, 1e-6f)), max_norm);
    return coef > 1.0f ? 1.0f : coef;
}

// ----------------------------------------------------------------------------
// pooling (cpu_pool2d_forward): one output of one plane [h,w]

/* The window of output (oy, ox) clipped to the image, and the divisor of
 * the average: the window clipped to the padded image (count_include_pad)
 * or to the image. */
struct pool_win {
    int hs, he, ws, we, div;
};

OPS_HD struct pool_win pool_window(const struct pool_shape *s, int oy, int ox)
{
    struct pool_win p;
    int hs = oy * s->stride - s->pad, he = hs + s->k;
    if (he > s->h + s->pad)
        he = s->h + s->pad;
    int ph = he - hs;
    int ws = ox * s->stride - s->pad, we = ws + s->k;
    if (we > s->w + s->pad)
        we = s->w + s->pad;
    int pw = we - ws;
    p.hs = hs < 0 ? 0 : hs;
    p.he = he > s->h ? s->h : he;
    p.ws = ws < 0 ? 0 : ws;
    p.we = we > s->w ? s->w : we;
    p.div = s->kind == POOL_AVG ? ph * pw : (p.he - p.hs) * (p.we - p.ws);
    return p;
}

/* Max (NaN wins, the last NaN met) or the float sum row by row, left to
 * right, divided once. */
OPS_HD float pool_out(const float *x, const struct pool_shape *s, int oy, int ox)
{
    struct pool_win p = pool_window(s, oy, ox);
    if (s->kind == POOL_MAX) {
        float acc = -INFINITY;
        for (int iy = p.hs; iy < p.he; iy++)
            for (int ix = p.ws; ix < p.we; ix++) {
                float v = x[(long)iy * s->w + ix];
                acc = (v > acc || v != v) ? v : acc;
            }
        return acc;
    }
    float acc = 0.0f;
    for (int iy = p.hs; iy < p.he; iy++)
        for (int ix = p.ws; ix < p.we; ix++)
            acc = f_add(acc, x[(long)iy * s->w + ix]);
    return f_div(acc, (float)p.div);
}

// ----------------------------------------------------------------------------
// bilinear resize (cpu_resize_bilinear)

struct rs_tap {
    int lo, hi;
    float w0, w1; /* half-pixel: weights of lo and hi; TF1: w1 = fraction */
};

/* PyTorch 1.13 on the CPU: float scale, source index and fraction in double,
 * fraction rounded to float; same size copies. */
OPS_HD struct rs_tap tap_half_pixel(int d, int in, int out)
{
    struct rs_tap t;
    if (in == out) {
        t.lo = d, t.hi = d, t.w0 = 1.0f, t.w1 = 0.0f;
        return t;
    }
    float scale = f_div((float)in, (float)out);
    double src = d_sub(d_mul((double)scale, d_add((double)d, 0.5)), 0.5);
    if (src < 0)
        src = 0;
    int lo = (int)src;
    double f = d_sub(src, (double)lo);
    float l1 = (float)(f < 0 ? 0 : f > 1 ? 1 : f);
    t.lo = lo;
    t.hi = lo + (lo < in - 1 ? 1 : 0);
    t.w0 = f_sub(1.0f, l1);
    t.w1 = l1;
    return t;
}

/* torch-fidelity's TF1: scale = float32(in / out), src = d * scale in float. */
OPS_HD struct rs_tap tap_tf1(int d, int in, int out)
{
    struct rs_tap t;
    float scale = (float)d_div((double)in, (double)out);
    float src = f_mul((float)d, scale);
    t.lo = (int)src;
    t.hi = t.lo + 1 < in ? t.lo + 1 : in - 1;
    t.w0 = 0.0f;
    t.w1 = f_sub(src, (float)t.lo);
    return t;
}

/* One output of plane x [., w], then v*mul + add unfused. */
OPS_HD float resize_px(const float *x, int w, struct rs_tap ty, struct rs_tap tx, int tf1, float mul,
                       float add)
{
    const float *r0 = x + (long)ty.lo * w, *r1 = x + (long)ty.hi * w;
    float v;
    if (tf1) {
        float i0 = f_add(r0[tx.lo], f_mul(f_sub(r0[tx.hi], r0[tx.lo]), tx.w1));
        float i1 = f_add(r1[tx.lo], f_mul(f_sub(r1[tx.hi], r1[tx.lo]), tx.w1));
        v = f_add(i0, f_mul(f_sub(i1, i0), ty.w1));
    } else {
        float t0 = f_add(f_mul(r0[tx.lo], tx.w0), f_mul(r0[tx.hi], tx.w1));
        float t1 = f_add(f_mul(r1[tx.lo], tx.w0), f_mul(r1[tx.hi], tx.w1));
        v = f_add(f_mul(t0, ty.w0), f_mul(t1, ty.w1));
    }
    return f_add(f_mul(v, mul), add);
}
