/*
 * backend-cpu-pool: the CPU implementations of lib/backend/layers-pool.h (the FID
 * Inception network's rectangular convolutions, poolings and input resize).
 *
 * conv_ex packs the weights once per batch and runs one GEMM per image
 * through lib/cpu/cpu-gemm.h: a 1x1 stride-1 convolution reads the image itself
 * as B, any other kernel with equal strides (square, 1x7, 3x1 ...) uses the
 * packed GEMM's fused im2col, the rest gets an explicit im2col matrix in the
 * caller's workspace.  Without the vector GEMM (old CPU, AGING_CPU_GEMM=blas)
 * every kernel goes through im2col + OpenBLAS.  Pools (vectorised along the
 * output rows) and resizes are parallelised over planes with OpenMP, summing
 * in float in PyTorch's order.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "cpu-impl.h"
#include "cpu-gemm.h"
#include "base/err.h"

// ----------------------------------------------------------------------------
// conv_ex

static int ex_pointwise(const struct conv_ex_shape *s)
{
    return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->ph == 0 && s->pw == 0;
}

/* The packed GEMM's fused im2col handles any kernel and padding with equal strides. */
static int ex_fusable(const struct conv_ex_shape *s)
{
    return s->sh == s->sw;
}

static int ex_needs_col(const struct conv_ex_shape *s)
{
    return !ex_pointwise(s) && (!cpu_gemm_available() || !ex_fusable(s));
}

static size_t ex_col_floats(const struct conv_ex_shape *s)
{
    if (!ex_needs_col(s))
        return 0;
    size_t n = (size_t)s->cin * s->kh * s->kw * s->hout * s->wout;
    return (n + 15) / 16 * 16; /* keeps the GEMM scratch after it 64-byte aligned */
}

size_t cpu_conv_ex_workspace(struct backend *be, const struct conv_ex_shape *s)
{
    (void)be;
    size_t g = 0;
    if (cpu_gemm_available())
        g = cpu_gemm_ws_floats(s->cout, s->cin * s->kh * s->kw, omp_get_max_threads());
    return (ex_col_floats(s) + g) * sizeof(float);
}

/* col [c*kh*kw, ho*wo] (row = (ch, ki, kj)) from img [c,h,w], zero padding. */
static void im2col_rect(float *col, const float *img, const struct conv_ex_shape *s)
{
    int rows = s->cin * s->kh * s->kw, ho = s->hout, wo = s->wout;
    long hwo = (long)ho * wo;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        int ch = r / (s->kh * s->kw), ki = r / s->kw % s->kh, kj = r % s->kw;
        const float *src = img + (long)ch * s->h * s->w;
        float *dst = col + r * hwo;
        for (int oy = 0; oy < ho; oy++) {
            int iy = oy * s->sh - s->ph + ki;
            float *d = dst + (long)oy * wo;
            if (iy < 0 || iy >= s->h) {
                memset(d, 0, sizeof(float) * wo);
                continue;
            }
            const float *srow = src + (long)iy * s->w;
            for (int ox = 0; ox < wo; ox++) {
                int ix = ox * s->sw - s->pw + kj;
                d[ox] = (ix >= 0 && ix < s->w) ? srow[ix] : 0.0f;
            }
        }
    }
}

/* o [cout, hw] += bias (fallback path), then ReLU when asked. */
static void bias_relu(float *o, const float *b, int cout, long hw, int add_bias, int relu)
{
    if (!(add_bias && b) && !relu)
        return;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < cout; ch++) {
        float *p = o + ch * hw, bv = add_bias && b ? b[ch] : 0.0f;
        for (long j = 0; j < hw; j++) {
            float v = p[j] + bv;
            p[j] = relu && !(v > 0) ? 0.0f : v;
        }
    }
}

int cpu_conv_ex_forward(struct backend *be, float *out, const float *in, const float *w, const float *b,
                        const struct conv_ex_shape *s, float *ws)
{
    (void)be;
    long hwi = (long)s->h * s->w, hwo = (long)s->hout * s->wout;
    int kk = s->cin * s->kh * s->kw;
    size_t colf = ex_col_floats(s);
    if ((colf || cpu_gemm_available()) && !ws)
        return err_set("conv_ex: no workspace given");
    float *col = colf ? ws : NULL;
    if (cpu_gemm_available()) {
        /* the weights are packed once for the whole batch */
        float *ap = ws + colf, *gws = ap + cpu_gemm_packed_a_floats(s->cout, kk);
        cpu_gemm_pack_a(ap, w, kk, 0, s->cout, kk);
        for (int i = 0; i < s->n; i++) {
            const float *x = in + (long)i * s->cin * hwi;
            float *o = out + (long)i * s->out_bstride;
            struct gemm_b B = {.mat = x, .ldb = hwo};
            if (col) {
                im2col_rect(col, x, s);
                B.mat = col;
            } else if (!ex_pointwise(s)) {
                B = gemm_b_image(x, s->cin, s->h, s->w, s->kh, s->sh, s->ph, s->hout, s->wout);
                B.kw = s->kw, B.pw = s->pw;
            }
            cpu_gemm_packed(o, hwo, s->cout, (int)hwo, kk, ap, &B, b, s->relu, gws);
        }
        return 0;
    }
    for (int i = 0; i < s->n; i++) {
        const float *x = in + (long)i * s->cin * hwi;
        float *o = out + (long)i * s->out_bstride;
        if (col)
            im2col_rect(col, x, s);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->cout, (int)hwo, kk, 1.0f, w, kk,
                    col ? col : x, (int)hwo, 0.0f, o, (int)hwo);
        bias_relu(o, b, s->cout, hwo, 1, s->relu);
    }
    return 0;
}

// ----------------------------------------------------------------------------
// pooling

#define POOL_CHUNK 256

/* The output columns [*lo, *hi) of [c0, c1) whose tap kx lands inside the row. */
static void pool_tap_range(const struct pool_shape *s, int kx, int c0, int c1, int *lo, int *hi)
{
    /* ix = ox*stride - pad + kx in [0, w) */
    int a = s->pad - kx, l = a > 0 ? (a + s->stride - 1) / s->stride : 0;
    int b = s->w - 1 + s->pad - kx, h = b >= 0 ? b / s->stride + 1 : 0;
    *lo = l > c0 ? l : c0;
    *hi = h < c1 ? h : c1;
}

/* Output index o's window along an axis of n pixels: [*lo, *hi) clipped to
 * the image; returns its length clipped to the padded image (the divisor of
 * count_include_pad). */
static inline int pool_window(int o, const struct pool_shape *s, int n, int *lo, int *hi)
{
    int a = o * s->stride - s->pad, b = a + s->k;
    if (b > n + s->pad)
        b = n + s->pad;
    *lo = a < 0 ? 0 : a;
    *hi = b > n ? n : b;
    return b - a;
}

/* One output row oy of plane x, columns [c0, c1): the taps are applied
 * window row by window row and, within a row, left to right (kx ascending),
 * each to every output column it reaches, so every column sums (or maxes)
 * its taps in the same order as the scalar window loop, vectorised across
 * columns. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
pool_row(float *o, const float *x, const struct pool_shape *s, int oy, int c0, int c1)
{
    float acc[POOL_CHUNK];
    int hs, he, ph = pool_window(oy, s, s->h, &hs, &he);
    int nc = c1 - c0, mx = s->kind == POOL_MAX;
    float init = mx ? -INFINITY : 0.0f;
    for (int j = 0; j < nc; j++)
        acc[j] = init;
    for (int iy = hs; iy < he; iy++) {
        const float *row = x + (long)iy * s->w;
        for (int kx = 0; kx < s->k; kx++) {
            int lo, hi;
            pool_tap_range(s, kx, c0, c1, &lo, &hi);
            const float *src = row - s->pad + kx;
            if (mx) {
#pragma omp simd
                for (int ox = lo; ox < hi; ox++) {
                    float v = src[(long)ox * s->stride], a = acc[ox - c0];
                    acc[ox - c0] = (v > a || v != v) ? v : a;
                }
            } else if (s->stride == 1) {
#pragma omp simd
                for (int ox = lo; ox < hi; ox++)
                    acc[ox - c0] += src[ox];
            } else {
#pragma omp simd
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
        int ws, we, pw = pool_window(ox, s, s->w, &ws, &we);
        int div = s->kind == POOL_AVG ? ph * pw : (he - hs) * (we - ws);
        o[ox] = acc[ox - c0] / (float)div;
    }
}

int cpu_pool2d_forward(struct backend *be, float *out, const float *in, const struct pool_shape *s)
{
    (void)be;
    long hwi = (long)s->h * s->w, hwo = (long)s->hout * s->wout, planes = (long)s->n * s->c;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        const float *x = in + pl * hwi;
        float *o = out + pl / s->c * s->out_bstride + pl % s->c * hwo;
        for (int oy = 0; oy < s->hout; oy++)
            for (int c0 = 0; c0 < s->wout; c0 += POOL_CHUNK)
                pool_row(o + (long)oy * s->wout, x, s, oy, c0,
                         s->wout - c0 < POOL_CHUNK ? s->wout : c0 + POOL_CHUNK);
    }
    return 0;
}

// ----------------------------------------------------------------------------
// bilinear resize

struct tap {
    int lo, hi;
    float w0, w1; /* half-pixel: weights of lo and hi; TF1: w1 = fraction */
};

/* PyTorch 1.13 compute_source_index_and_lambda on the CPU: a float scale
 * in/out, the source index and the fraction in double (the CPU acc type),
 * the fraction then rounded to float; same size copies. */
static struct tap tap_half_pixel(int d, int in, int out)
{
    if (in == out)
        return (struct tap){d, d, 1.0f, 0.0f};
    float scale = (float)in / (float)out;
    double src = (double)scale * (d + 0.5) - 0.5;
    if (src < 0)
        src = 0;
    int lo = (int)src, hi = lo + (lo < in - 1 ? 1 : 0);
    double f = src - lo;
    float l1 = (float)(f < 0 ? 0 : f > 1 ? 1 : f);
    return (struct tap){lo, hi, 1.0f - l1, l1};
}

/* torch-fidelity: scale = float32(in / out) (Python division), grid = d * scale in float32. */
static struct tap tap_tf1(int d, int in, int out)
{
    float scale = (float)((double)in / (double)out);
    float src = (float)d * scale;
    int lo = (int)src, hi = lo + 1 < in ? lo + 1 : in - 1;
    return (struct tap){lo, hi, 0.0f, src - (float)lo};
}

int cpu_resize_bilinear(struct backend *be, float *out, const float *in, int planes, int h, int w, int hout,
                        int wout, enum resize_mode mode, float mul, float add)
{
    (void)be;
    int tf1 = mode == RESIZE_TF1;
    long rows = (long)planes * hout;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        int pl = (int)(r / hout), oy = (int)(r % hout);
        const float *x = in + (long)pl * h * w;
        float *o = out + r * wout;
        struct tap ty = tf1 ? tap_tf1(oy, h, hout) : tap_half_pixel(oy, h, hout);
        const float *r0 = x + (long)ty.lo * w, *r1 = x + (long)ty.hi * w;
        for (int ox = 0; ox < wout; ox++) {
            float v;
            if (tf1) {
                struct tap tx = tap_tf1(ox, w, wout);
                float i0 = r0[tx.lo] + (r0[tx.hi] - r0[tx.lo]) * tx.w1;
                float i1 = r1[tx.lo] + (r1[tx.hi] - r1[tx.lo]) * tx.w1;
                v = i0 + (i1 - i0) * ty.w1;
            } else {
                struct tap tx = tap_half_pixel(ox, w, wout);
                float t0 = r0[tx.lo] * tx.w0 + r0[tx.hi] * tx.w1;
                float t1 = r1[tx.lo] * tx.w0 + r1[tx.hi] * tx.w1;
                v = t0 * ty.w0 + t1 * ty.w1;
            }
            o[ox] = v * mul + add;
        }
    }
    return 0;
}
