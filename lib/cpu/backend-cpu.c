/*
 * backend-cpu: the reference backend.  Convolutions run on our own packed
 * GEMM (lib/cpu/cpu-gemm.h: AVX-512 or AVX2+FMA kernels chosen at run time,
 * the im2col fused into the packing; transposed convolutions and strided
 * input gradients fold a col matrix back with col2im); where neither ISA is
 * there (or AGING_CPU_GEMM=blas) they fall back to im2col + OpenBLAS sgemm
 * per image.  16-bit precisions go through lib/cpu/backend-cpu-half.c (bf16
 * on oneDNN, lib/cpu/cpu-dnnl.c, where the CPU has bf16 units).  Everything
 * else is plain loops parallelised with OpenMP over channels or planes.
 * Statistics (norms, means, losses) accumulate in double.  The one scratch
 * buffer (the GEMMs' packing and col matrices) is owned by the backend,
 * sized at model build time (the conv2d_workspace / convt2d_workspace
 * entries, then backend_reserve()) and only grown by an op if a caller
 * skipped the reservation.
 *
 * OpenBLAS GEMMs (the fallback): OpenBLAS runs single-threaded and we split
 * each product between the OpenMP threads ourselves (sgemm_par).  The multi-threaded OpenBLAS
 * (pthread build, 0.3.21 here) returned wrong dW for some shapes when run
 * next to OpenMP regions (caught by test_models two_calls), and two thread
 * pools also fight over 2 cores.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu-dnnl.h"
#include "cpu-gemm.h"
#include "cpu-impl.h"
#include "base/err.h"

struct cpu_ctx {
    float *ws; /* the convolutions' scratch: GEMM packing, im2col / col2im */
    size_t ws_bytes;
    float *half; /* rounded copies of the 16-bit emulation (backend-cpu-half.c) */
    size_t half_floats;
    struct cpu_dnnl *dnnl; /* bf16 on the CPU's bf16 units (cpu-dnnl.h), made on first use */
};

// ----------------------------------------------------------------------------
// memory

static void *cpu_alloc(struct backend *be, size_t bytes)
{
    (void)be;
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) {
        err_set("cpu backend: out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

static void cpu_dealloc(struct backend *be, void *p)
{
    (void)be;
    free(p);
}

static int cpu_copy(struct backend *be, void *dst, const void *src, size_t bytes)
{
    (void)be;
    if (bytes && dst != src)
        memmove(dst, src, bytes);
    return 0;
}

static int cpu_zero(struct backend *be, void *dst, size_t bytes)
{
    (void)be;
    if (bytes)
        memset(dst, 0, bytes);
    return 0;
}

static int cpu_reserve(struct backend *be, size_t bytes)
{
    struct cpu_ctx *c = be->context;
    if (bytes <= c->ws_bytes)
        return 0;
    float *p = cpu_alloc(be, bytes);
    if (!p)
        return -1;
    be->allocs++;
    free(c->ws);
    c->ws = p;
    c->ws_bytes = bytes;
    return 0;
}

static float *cpu_ws(struct backend *be, size_t bytes)
{
    if (cpu_reserve(be, bytes))
        return NULL;
    return ((struct cpu_ctx *)be->context)->ws;
}

float *cpu_half_scratch(struct backend *be, size_t floats)
{
    struct cpu_ctx *c = be->context;
    if (floats <= c->half_floats)
        return c->half;
    float *p = cpu_alloc(be, floats * sizeof(float));
    if (!p)
        return NULL;
    be->allocs++;
    free(c->half);
    c->half = p;
    c->half_floats = floats;
    return p;
}

struct cpu_dnnl *cpu_dnnl_of(struct backend *be)
{
    struct cpu_ctx *c = be->context;
    if (!c->dnnl)
        c->dnnl = cpu_dnnl_new(&be->allocs);
    return c->dnnl;
}

// ----------------------------------------------------------------------------
// C [m,n] = alpha op(A) op(B) + beta C, row-major, split over OpenMP threads
// along n (or m when n is narrow).  Each slice is an independent sgemm.

static void sgemm_par(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha,
                      const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    int nt = omp_get_max_threads();
    long work = (long)m * n * k;
    if (nt < 2 || work < (1L << 18)) {
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    int split_n = n >= 64 * nt || n >= m;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), len = split_n ? n : m;
        int chunk = (len + nt - 1) / nt;
        if (split_n)
            chunk = (chunk + 15) / 16 * 16;
        int lo = t * chunk, hi = lo + chunk < len ? lo + chunk : len;
        if (lo < hi) {
            if (split_n)
                cblas_sgemm(CblasRowMajor, ta, tb, m, hi - lo, k, alpha, a, lda,
                            tb == CblasNoTrans ? b + lo : b + (long)lo * ldb, ldb, beta, c + lo, ldc);
            else
                cblas_sgemm(CblasRowMajor, ta, tb, hi - lo, n, k, alpha,
                            ta == CblasNoTrans ? a + (long)lo * lda : a + lo, lda, b, ldb, beta,
                            c + (long)lo * ldc, ldc);
        }
    }
}

// ----------------------------------------------------------------------------
// im2col / col2im.  The image is [c,h,w]; the sliding grid is [ho,wo] with
// kernel k, stride s, zero padding p; col is [c*k*k, ho*wo], row (ch,ki,kj).

static void im2col(float *col, const float *img, int c, int h, int w, int k, int s, int p, int ho, int wo)
{
    int rows = c * k * k;
    long hw = (long)ho * wo;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        int ch = r / (k * k), ki = (r / k) % k, kj = r % k;
        const float *src = img + (long)ch * h * w;
        float *dst = col + r * hw;
        /* for stride 1 the valid output columns form one contiguous run */
        int lo = p - kj, hi = w + p - kj;
        if (lo < 0)
            lo = 0;
        if (hi > wo)
            hi = wo;
        for (int oy = 0; oy < ho; oy++) {
            int iy = oy * s - p + ki;
            float *d = dst + (long)oy * wo;
            if (iy < 0 || iy >= h) {
                memset(d, 0, sizeof(float) * wo);
                continue;
            }
            const float *srow = src + (long)iy * w;
            if (s == 1) {
                if (hi <= lo) {
                    memset(d, 0, sizeof(float) * wo);
                    continue;
                }
                for (int ox = 0; ox < lo; ox++)
                    d[ox] = 0;
                memcpy(d + lo, srow + lo - p + kj, sizeof(float) * (hi - lo));
                for (int ox = hi; ox < wo; ox++)
                    d[ox] = 0;
            } else {
                for (int ox = 0; ox < wo; ox++) {
                    int ix = ox * s - p + kj;
                    d[ox] = (ix >= 0 && ix < w) ? srow[ix] : 0.0f;
                }
            }
        }
    }
}

/* img [c,h,w] = sum of col entries landing on each pixel (img overwritten). */
static void col2im(float *img, const float *col, int c, int h, int w, int k, int s, int p, int ho, int wo)
{
    long hw = (long)ho * wo;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        float *dst = img + (long)ch * h * w;
        memset(dst, 0, sizeof(float) * h * w);
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                const float *src = col + ((long)(ch * k + ki) * k + kj) * hw;
                for (int oy = 0; oy < ho; oy++) {
                    int iy = oy * s - p + ki;
                    if (iy < 0 || iy >= h)
                        continue;
                    float *drow = dst + (long)iy * w;
                    const float *srow = src + (long)oy * wo;
                    if (s == 1) {
                        int lo = p - kj, hi = w + p - kj;
                        if (lo < 0)
                            lo = 0;
                        if (hi > wo)
                            hi = wo;
                        for (int ox = lo; ox < hi; ox++)
                            drow[ox - p + kj] += srow[ox];
                    } else {
                        for (int ox = 0; ox < wo; ox++) {
                            int ix = ox * s - p + kj;
                            if (ix >= 0 && ix < w)
                                drow[ix] += srow[ox];
                        }
                    }
                }
            }
    }
}

// ----------------------------------------------------------------------------
// convolutions

static int is_pointwise(const struct conv_shape *s)
{
    return s->k == 1 && s->stride == 1 && s->pad == 0;
}

int cpu_conv2d_forward_f32(struct backend *be, float *out, const float *in, const float *w, const float *b,
                           const struct conv_shape *s)
{
    long hwi = (long)s->h * s->w, hwo = (long)s->hout * s->wout;
    int kk = s->cin * s->k * s->k;
    if (cpu_gemm_available()) {
        /* packed GEMM reading B straight from the image (im2col fused) */
        float *ws = cpu_ws(be, cpu_gemm_ws_floats(s->cout, kk, omp_get_max_threads()) * sizeof(float));
        if (!ws)
            return -1;
        for (int i = 0; i < s->n; i++) {
            struct gemm_b B = gemm_b_image(in + i * s->cin * hwi, s->cin, s->h, s->w, s->k, s->stride, s->pad,
                                           s->hout, s->wout);
            if (is_pointwise(s))
                B.mat = B.img, B.ldb = hwo;
            cpu_gemm(out + i * s->cout * hwo, hwo, s->cout, (int)hwo, kk, w, kk, 0, &B, b, ws);
        }
        return 0;
    }
    float *col = is_pointwise(s) ? NULL : cpu_ws(be, cpu_conv2d_ws_bytes(s));
    if (!is_pointwise(s) && !col)
        return -1;
    for (int i = 0; i < s->n; i++) {
        const float *x = in + i * s->cin * hwi;
        if (col)
            im2col(col, x, s->cin, s->h, s->w, s->k, s->stride, s->pad, s->hout, s->wout);
        sgemm_par(CblasNoTrans, CblasNoTrans, s->cout, (int)hwo, kk, 1.0f, w, kk, col ? col : x, (int)hwo,
                  0.0f, out + i * s->cout * hwo, (int)hwo);
    }
    cpu_add_bias(out, b, s->n, s->cout, hwo);
    return 0;
}

/* conv2d backward on cpu_gemm: dw += g @ im2col(x)^T (cpu_gemm_wgrad, the
 * pixels split between the threads); dx: for stride 1, the conv of g padded
 * by k-1-pad with the flipped, transposed kernel (wf [cin, cout*k*k], the
 * im2col fused into the packing as in the forward); otherwise dcol = w^T @ g
 * folded back with col2im.  The workspace holds wf, then the larger of the
 * wgrad scratch and the dx scratch (col and the GEMM's). */
static int dx_by_flip(const struct conv_shape *s)
{
    return s->stride == 1 && s->pad <= s->k - 1;
}

static size_t conv2d_gemm_ws_floats(const struct conv_shape *s)
{
    int T = omp_get_max_threads(), kk = s->cin * s->k * s->k;
    size_t hwo = (size_t)s->hout * s->wout;
    size_t fwd = cpu_gemm_ws_floats(s->cout, kk, T);
    size_t wf = ((size_t)s->cout * kk + 15) / 16 * 16;
    size_t dw = cpu_gemm_wgrad_ws_floats(s->cout, kk, T);
    size_t dx = dx_by_flip(s) ? cpu_gemm_ws_floats(s->cin, s->cout * s->k * s->k, T)
                              : ((size_t)kk * hwo + 15) / 16 * 16 + cpu_gemm_ws_floats(kk, s->cout, T);
    size_t bwd = wf + (dw > dx ? dw : dx);
    return fwd > bwd ? fwd : bwd;
}

static size_t convt2d_gemm_ws_floats(const struct conv_shape *s)
{
    int T = omp_get_max_threads(), kk = s->cout * s->k * s->k;
    size_t hwi = (size_t)s->h * s->w;
    size_t fwd = ((size_t)kk * hwi + 15) / 16 * 16 + cpu_gemm_ws_floats(kk, s->cin, T);
    size_t dw = cpu_gemm_wgrad_ws_floats(s->cin, kk, T), dx = cpu_gemm_ws_floats(s->cin, kk, T);
    size_t bwd = dw > dx ? dw : dx;
    return fwd > bwd ? fwd : bwd;
}

size_t cpu_conv2d_ws_bytes(const struct conv_shape *s)
{
    if (!cpu_gemm_available())
        return (size_t)s->cin * s->k * s->k * s->hout * s->wout * sizeof(float);
    return conv2d_gemm_ws_floats(s) * sizeof(float);
}

size_t cpu_convt2d_ws_bytes(const struct conv_shape *s)
{
    if (!cpu_gemm_available())
        return (size_t)s->cout * s->k * s->k * s->h * s->w * sizeof(float);
    return convt2d_gemm_ws_floats(s) * sizeof(float);
}

static size_t cpu_conv2d_workspace(struct backend *be, const struct conv_shape *s)
{
    (void)be;
    return cpu_conv2d_ws_bytes(s);
}

static size_t cpu_convt2d_workspace(struct backend *be, const struct conv_shape *s)
{
    (void)be;
    return cpu_convt2d_ws_bytes(s);
}

static int conv2d_backward_gemm(struct backend *be, float *din, float *dw, float *db, const float *dout,
                                const float *in, const float *w, const struct conv_shape *s)
{
    long hwi = (long)s->h * s->w, hwo = (long)s->hout * s->wout;
    int kk = s->cin * s->k * s->k, k2 = s->k * s->k, flip = dx_by_flip(s);
    float *ws = cpu_ws(be, conv2d_gemm_ws_floats(s) * sizeof(float));
    if (!ws)
        return -1;
    float *wf = ws, *rest = ws + ((size_t)s->cout * kk + 15) / 16 * 16;
    if (din && flip) {
        /* wf [ci][co][a][b] = w [co][ci][k-1-a][k-1-b] */
#pragma omp parallel for schedule(static)
        for (int ci = 0; ci < s->cin; ci++)
            for (int co = 0; co < s->cout; co++) {
                float *d = wf + ((long)ci * s->cout + co) * k2;
                const float *src = w + ((long)co * s->cin + ci) * k2;
                for (int q = 0; q < k2; q++)
                    d[q] = src[k2 - 1 - q];
            }
    }
    cpu_sum_bias(db, dout, s->n, s->cout, hwo);
    for (int i = 0; i < s->n; i++) {
        const float *x = in + i * s->cin * hwi, *g = dout + i * s->cout * hwo;
        if (dw) {
            struct gemm_b B = gemm_b_image(x, s->cin, s->h, s->w, s->k, s->stride, s->pad, s->hout, s->wout);
            cpu_gemm_wgrad(dw, kk, s->cout, kk, (int)hwo, g, hwo, &B, rest);
        }
        if (!din)
            continue;
        float *dx = din + i * s->cin * hwi;
        if (flip) {
            struct gemm_b B =
                gemm_b_image(g, s->cout, s->hout, s->wout, s->k, 1, s->k - 1 - s->pad, s->h, s->w);
            cpu_gemm(dx, hwi, s->cin, (int)hwi, s->cout * k2, wf, s->cout * k2, 0, &B, NULL, rest);
        } else {
            float *col = rest;
            size_t colf = ((size_t)kk * hwo + 15) / 16 * 16;
            struct gemm_b B = {.mat = g, .ldb = hwo};
            cpu_gemm(col, hwo, kk, (int)hwo, s->cout, w, kk, 1, &B, NULL, col + colf);
            col2im(dx, col, s->cin, s->h, s->w, s->k, s->stride, s->pad, s->hout, s->wout);
        }
    }
    return 0;
}

int cpu_conv2d_backward_f32(struct backend *be, float *din, float *dw, float *db, const float *dout,
                            const float *in, const float *w, const struct conv_shape *s)
{
    if (cpu_gemm_available())
        return conv2d_backward_gemm(be, din, dw, db, dout, in, w, s);
    long hwi = (long)s->h * s->w, hwo = (long)s->hout * s->wout;
    int kk = s->cin * s->k * s->k;
    int pw = is_pointwise(s);
    float *col = pw ? NULL : cpu_ws(be, (size_t)kk * hwo * sizeof(float));
    if (!pw && !col)
        return -1;
    cpu_sum_bias(db, dout, s->n, s->cout, hwo);
    for (int i = 0; i < s->n; i++) {
        const float *x = in + i * s->cin * hwi, *g = dout + i * s->cout * hwo;
        if (dw) {
            if (col)
                im2col(col, x, s->cin, s->h, s->w, s->k, s->stride, s->pad, s->hout, s->wout);
            /* dw [cout,kk] += g [cout,hwo] @ col^T [hwo,kk] */
            sgemm_par(CblasNoTrans, CblasTrans, s->cout, kk, (int)hwo, 1.0f, g, (int)hwo, col ? col : x,
                      (int)hwo, 1.0f, dw, kk);
        }
        if (din) {
            float *dx = din + i * s->cin * hwi;
            /* dcol [kk,hwo] = w^T [kk,cout] @ g [cout,hwo], then fold back */
            sgemm_par(CblasTrans, CblasNoTrans, kk, (int)hwo, s->cout, 1.0f, w, kk, g, (int)hwo, 0.0f,
                      col ? col : dx, (int)hwo);
            if (col)
                col2im(dx, col, s->cin, s->h, s->w, s->k, s->stride, s->pad, s->hout, s->wout);
        }
    }
    return 0;
}

/* The transposed conv is the data-gradient of a conv from the output grid
 * [cout,hout,wout] to the input grid [cin,h,w]: col [cout*k*k, h*w] = w^T @ in,
 * folded onto the output with col2im. */
int cpu_convt2d_forward_f32(struct backend *be, float *out, const float *in, const float *w, const float *b,
                            const struct conv_shape *s)
{
    long hwi = (long)s->h * s->w, hwo = (long)s->hout * s->wout;
    int kk = s->cout * s->k * s->k;
    if (cpu_gemm_available()) {
        /* col [kk,hwi] = w^T @ in, then col2im; the GEMM scratch follows col */
        size_t colf = ((size_t)kk * hwi + 15) / 16 * 16;
        float *col =
            cpu_ws(be, (colf + cpu_gemm_ws_floats(kk, s->cin, omp_get_max_threads())) * sizeof(float));
        if (!col)
            return -1;
        for (int i = 0; i < s->n; i++) {
            struct gemm_b B = {.mat = in + i * s->cin * hwi, .ldb = hwi};
            cpu_gemm(col, hwi, kk, (int)hwi, s->cin, w, kk, 1, &B, NULL, col + colf);
            col2im(out + i * s->cout * hwo, col, s->cout, s->hout, s->wout, s->k, s->stride, s->pad, s->h,
                   s->w);
        }
        cpu_add_bias(out, b, s->n, s->cout, hwo);
        return 0;
    }
    float *col = cpu_ws(be, cpu_convt2d_ws_bytes(s));
    if (!col)
        return -1;
    for (int i = 0; i < s->n; i++) {
        sgemm_par(CblasTrans, CblasNoTrans, kk, (int)hwi, s->cin, 1.0f, w, kk, in + i * s->cin * hwi,
                  (int)hwi, 0.0f, col, (int)hwi);
        col2im(out + i * s->cout * hwo, col, s->cout, s->hout, s->wout, s->k, s->stride, s->pad, s->h, s->w);
    }
    cpu_add_bias(out, b, s->n, s->cout, hwo);
    return 0;
}

int cpu_convt2d_backward_f32(struct backend *be, float *din, float *dw, float *db, const float *dout,
                             const float *in, const float *w, const struct conv_shape *s)
{
    long hwi = (long)s->h * s->w, hwo = (long)s->hout * s->wout;
    int kk = s->cout * s->k * s->k;
    if (cpu_gemm_available()) {
        /* din = w @ im2col(dout) (a conv, im2col fused); dw += in @ im2col(dout)^T */
        float *ws = cpu_ws(be, convt2d_gemm_ws_floats(s) * sizeof(float));
        if (!ws)
            return -1;
        cpu_sum_bias(db, dout, s->n, s->cout, hwo);
        for (int i = 0; i < s->n; i++) {
            struct gemm_b B = gemm_b_image(dout + i * s->cout * hwo, s->cout, s->hout, s->wout, s->k,
                                           s->stride, s->pad, s->h, s->w);
            if (dw)
                cpu_gemm_wgrad(dw, kk, s->cin, kk, (int)hwi, in + i * s->cin * hwi, hwi, &B, ws);
            if (din)
                cpu_gemm(din + i * s->cin * hwi, hwi, s->cin, (int)hwi, kk, w, kk, 0, &B, NULL, ws);
        }
        return 0;
    }
    float *col = cpu_ws(be, (size_t)kk * hwi * sizeof(float));
    if (!col)
        return -1;
    cpu_sum_bias(db, dout, s->n, s->cout, hwo);
    for (int i = 0; i < s->n; i++) {
        im2col(col, dout + i * s->cout * hwo, s->cout, s->hout, s->wout, s->k, s->stride, s->pad, s->h, s->w);
        /* dw [cin,kk] += in [cin,hwi] @ col^T [hwi,kk] */
        if (dw)
            sgemm_par(CblasNoTrans, CblasTrans, s->cin, kk, (int)hwi, 1.0f, in + i * s->cin * hwi, (int)hwi,
                      col, (int)hwi, 1.0f, dw, kk);
        /* din [cin,hwi] = w [cin,kk] @ col [kk,hwi] */
        if (din)
            sgemm_par(CblasNoTrans, CblasNoTrans, s->cin, (int)hwi, kk, 1.0f, w, kk, col, (int)hwi, 0.0f,
                      din + i * s->cin * hwi, (int)hwi);
    }
    return 0;
}

// ----------------------------------------------------------------------------
// reflection padding

static inline int reflect(int i, int n)
{
    if (i < 0)
        return -i;
    if (i >= n)
        return 2 * n - 2 - i;
    return i;
}

static int cpu_reflpad_forward(struct backend *be, float *out, const float *in, int planes, int h, int w,
                               int pad)
{
    (void)be;
    int ho = h + 2 * pad, wo = w + 2 * pad;
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < planes; pl++) {
        const float *src = in + (long)pl * h * w;
        float *dst = out + (long)pl * ho * wo;
        for (int oy = 0; oy < ho; oy++) {
            const float *srow = src + (long)reflect(oy - pad, h) * w;
            float *d = dst + (long)oy * wo;
            for (int x = 0; x < pad; x++)
                d[x] = srow[pad - x];
            memcpy(d + pad, srow, sizeof(float) * w);
            for (int x = 0; x < pad; x++)
                d[pad + w + x] = srow[w - 2 - x];
        }
    }
    return 0;
}

static int cpu_reflpad_backward(struct backend *be, float *din, const float *dout, int planes, int h, int w,
                                int pad)
{
    (void)be;
    int ho = h + 2 * pad, wo = w + 2 * pad;
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < planes; pl++) {
        float *dst = din + (long)pl * h * w;
        const float *src = dout + (long)pl * ho * wo;
        memset(dst, 0, sizeof(float) * h * w);
        for (int oy = 0; oy < ho; oy++) {
            float *drow = dst + (long)reflect(oy - pad, h) * w;
            const float *s = src + (long)oy * wo;
            for (int x = 0; x < pad; x++)
                drow[pad - x] += s[x];
            for (int x = 0; x < w; x++)
                drow[x] += s[pad + x];
            for (int x = 0; x < pad; x++)
                drow[w - 2 - x] += s[pad + w + x];
        }
    }
    return 0;
}

// ----------------------------------------------------------------------------
// norms

/* The double sums of the norms run in SUM_LANES independent partial sums
 * (value j of a segment goes to lane j % SUM_LANES; the lanes are added in
 * order at the end) rather than one chain of dependent adds: the compiler
 * keeps the lanes in vector registers, and the order is fixed, so the sums
 * are the same on every ISA and for every thread count. */
#define SUM_LANES 16

/* The norms' loops are memory-bound on SSE only once their data leaves the
 * caches; a batch-norm group (up to a few hundred KB) is walked three times
 * and stays in L2, where wider vectors pay.  So they are also compiled for
 * AVX2 and AVX-512 and the loader picks the clone the CPU runs (ifunc).
 * Under -std=c11 nothing is contracted into FMAs, so every clone computes
 * the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang_analyzer__)
#define NORM_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NORM_CLONES
#endif

static double lanes_total(const double *acc)
{
    double s = 0;
    for (int l = 0; l < SUM_LANES; l++)
        s += acc[l];
    return s;
}

/* acc[lane] += p[j] */
NORM_CLONES static void lanes_sum(double *acc, const float *p, long hw)
{
    long j = 0;
    for (; j + SUM_LANES <= hw; j += SUM_LANES)
#pragma omp simd
        for (int l = 0; l < SUM_LANES; l++)
            acc[l] += p[j + l];
    for (int l = 0; j < hw; j++, l++)
        acc[l] += p[j];
}

/* acc[lane] += (p[j] - m)^2 */
NORM_CLONES static void lanes_sumsq_dev(double *acc, const float *p, long hw, double m)
{
    long j = 0;
    for (; j + SUM_LANES <= hw; j += SUM_LANES)
#pragma omp simd
        for (int l = 0; l < SUM_LANES; l++) {
            double d = p[j + l] - m;
            acc[l] += d * d;
        }
    for (int l = 0; j < hw; j++, l++) {
        double d = p[j] - m;
        acc[l] += d * d;
    }
}

/* mean and biased variance of n strided segments of hw values (two passes) */
static void plane_stats(const float *x, int n, long stride, long hw, double *mean, double *var)
{
    double acc[SUM_LANES] = {0};
    for (int i = 0; i < n; i++)
        lanes_sum(acc, x + i * stride, hw);
    double m = lanes_total(acc) / ((double)n * hw);
    for (int l = 0; l < SUM_LANES; l++)
        acc[l] = 0;
    for (int i = 0; i < n; i++)
        lanes_sumsq_dev(acc, x + i * stride, hw, m);
    *mean = m;
    *var = lanes_total(acc) / ((double)n * hw);
}

NORM_CLONES static void affine_planes(float *out, const float *in, int n, long stride, long hw, float a,
                                      float b)
{
    for (int i = 0; i < n; i++) {
        const float *p = in + i * stride;
        float *o = out + i * stride;
#pragma omp simd
        for (long j = 0; j < hw; j++)
            o[j] = p[j] * a + b;
    }
}

static int cpu_batchnorm_forward(struct backend *be, float *out, float *mean, float *rstd, const float *in,
                                 const float *gamma, const float *beta, float *run_mean, float *run_var,
                                 int n, int c, int hw, int training, double momentum, double eps)
{
    (void)be;
    long cnt = (long)n * hw;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double m, v, r;
        if (training) {
            plane_stats(in + (long)ch * hw, n, (long)c * hw, hw, &m, &v);
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
        affine_planes(out + (long)ch * hw, in + (long)ch * hw, n, (long)c * hw, hw, (float)a, (float)b);
    }
    return 0;
}

/* Shared by batch and instance norm: one group of n segments of hw values.
 * training: din = rstd*gamma*(g - mean(g) - xhat*mean(g*xhat)); otherwise the
 * statistics are constants and din = rstd*gamma*g. */
NORM_CLONES static void norm_backward_group(float *din, float *dgamma, float *dbeta, const float *dout,
                                            const float *in, float m, float r, float gam, int n, long stride,
                                            long hw, int training)
{
    double ag[SUM_LANES] = {0}, agx[SUM_LANES] = {0};
    for (int i = 0; i < n; i++) {
        const float *g = dout + i * stride, *x = in + i * stride;
        long j = 0;
        for (; j + SUM_LANES <= hw; j += SUM_LANES)
#pragma omp simd
            for (int l = 0; l < SUM_LANES; l++) {
                ag[l] += g[j + l];
                agx[l] += (double)g[j + l] * ((x[j + l] - m) * r);
            }
        for (int l = 0; j < hw; j++, l++) {
            ag[l] += g[j];
            agx[l] += (double)g[j] * ((x[j] - m) * r);
        }
    }
    double sg = lanes_total(ag), sgx = lanes_total(agx);
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
#pragma omp simd
        for (long j = 0; j < hw; j++)
            d[j] = k * (g[j] - mg - (x[j] - m) * r * mgx);
    }
}

static int cpu_batchnorm_backward(struct backend *be, float *din, float *dgamma, float *dbeta,
                                  const float *dout, const float *in, const float *mean, const float *rstd,
                                  const float *gamma, int n, int c, int hw, int training)
{
    (void)be;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        long off = (long)ch * hw;
        norm_backward_group(din ? din + off : NULL, dgamma ? dgamma + ch : NULL, dbeta ? dbeta + ch : NULL,
                            dout + off, in + off, mean[ch], rstd[ch], gamma ? gamma[ch] : 1.0f, n,
                            (long)c * hw, hw, training);
    }
    return 0;
}

static int cpu_instnorm_forward(struct backend *be, float *out, float *mean, float *rstd, const float *in,
                                int planes, int hw, double eps)
{
    (void)be;
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < planes; pl++) {
        double m, v;
        plane_stats(in + (long)pl * hw, 1, hw, hw, &m, &v);
        double r = 1.0 / sqrt(v + eps);
        mean[pl] = (float)m;
        rstd[pl] = (float)r;
        affine_planes(out + (long)pl * hw, in + (long)pl * hw, 1, hw, hw, (float)r, (float)(-m * r));
    }
    return 0;
}

static int cpu_instnorm_backward(struct backend *be, float *din, const float *dout, const float *in,
                                 const float *mean, const float *rstd, int planes, int hw)
{
    (void)be;
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < planes; pl++) {
        long off = (long)pl * hw;
        norm_backward_group(din + off, NULL, NULL, dout + off, in + off, mean[pl], rstd[pl], 1.0f, 1, hw, hw,
                            1);
    }
    return 0;
}

// ----------------------------------------------------------------------------
// activations

static int cpu_act_forward(struct backend *be, float *out, const float *in, long n, enum act_kind kind)
{
    (void)be;
    switch (kind) {
    case ACT_RELU:
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < n; i++)
            out[i] = in[i] > 0 ? in[i] : 0.0f;
        return 0;
    case ACT_LRELU:
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++)
            out[i] = in[i] > 0 ? in[i] : in[i] * ACT_LRELU_SLOPE;
        return 0;
    case ACT_TANH:
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++)
            out[i] = tanhf(in[i]);
        return 0;
    }
    return err_set("act_forward: unknown kind %d", (int)kind);
}

static int cpu_act_backward(struct backend *be, float *din, const float *dout, const float *out, long n,
                            enum act_kind kind)
{
    (void)be;
    switch (kind) {
    case ACT_RELU:
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < n; i++) {
            float g = dout[i]; /* loaded unconditionally: a select, not a branch */
            din[i] = out[i] > 0 ? g : 0.0f;
        }
        return 0;
    case ACT_LRELU:
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++)
            din[i] = out[i] > 0 ? dout[i] : dout[i] * ACT_LRELU_SLOPE;
        return 0;
    case ACT_TANH:
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < n; i++)
            din[i] = dout[i] * (1.0f - out[i] * out[i]);
        return 0;
    }
    return err_set("act_backward: unknown kind %d", (int)kind);
}

// ----------------------------------------------------------------------------
// reductions, losses, elementwise

static int cpu_mean_forward(struct backend *be, float *out, const float *in, int n, long m)
{
    (void)be;
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (long j = 0; j < m; j++)
            s += in[i * m + j];
        out[i] = (float)(s / m);
    }
    return 0;
}

static int cpu_mean_backward(struct backend *be, float *din, const float *dout, int n, long m)
{
    (void)be;
    for (int i = 0; i < n; i++) {
        float g = dout[i] / (float)m;
        for (long j = 0; j < m; j++)
            din[i * m + j] = g;
    }
    return 0;
}

static int cpu_loss_forward(struct backend *be, float *out, const float *x, const float *target, float tv,
                            long n, enum loss_kind kind)
{
    (void)be;
    double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (long i = 0; i < n; i++) {
        double d = (double)x[i] - (target ? target[i] : tv);
        s += kind == LOSS_MSE ? d * d : fabs(d);
    }
    *out = (float)(s / n);
    return 0;
}

static int cpu_loss_backward(struct backend *be, float *dx, const float *x, const float *target, float tv,
                             float scale, long n, enum loss_kind kind)
{
    (void)be;
    float k = (kind == LOSS_MSE ? 2.0f : 1.0f) * scale / (float)n;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        float d = x[i] - (target ? target[i] : tv);
        if (kind == LOSS_MSE)
            dx[i] += k * d;
        else
            dx[i] += d > 0 ? k : d < 0 ? -k : 0.0f;
    }
    return 0;
}

static int cpu_axpy(struct backend *be, float *y, float a, const float *x, long n)
{
    (void)be;
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; i++)
        y[i] += a * x[i];
    return 0;
}

// ----------------------------------------------------------------------------
// the table

static void cpu_free(struct backend *be)
{
    struct cpu_ctx *c = be->context;
    free(c->ws);
    free(c->half);
    cpu_dnnl_free(c->dnnl);
    free(c);
    free(be);
}

static const struct backend_iface cpu_iface = {
    .name = "cpu",
    .free = cpu_free,
    .alloc = cpu_alloc,
    .dealloc = cpu_dealloc,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .zero = cpu_zero,
    .synchronize = NULL,
    .reserve = cpu_reserve,
    .conv2d_forward = cpu_conv2d_forward,
    .conv2d_backward = cpu_conv2d_backward,
    .convt2d_forward = cpu_convt2d_forward,
    .convt2d_backward = cpu_convt2d_backward,
    .conv2d_workspace = cpu_conv2d_workspace,
    .convt2d_workspace = cpu_convt2d_workspace,
    .reflpad_forward = cpu_reflpad_forward,
    .reflpad_backward = cpu_reflpad_backward,
    .batchnorm_forward = cpu_batchnorm_forward,
    .batchnorm_backward = cpu_batchnorm_backward,
    .instnorm_forward = cpu_instnorm_forward,
    .instnorm_backward = cpu_instnorm_backward,
    .act_forward = cpu_act_forward,
    .act_backward = cpu_act_backward,
    .mean_forward = cpu_mean_forward,
    .mean_backward = cpu_mean_backward,
    .loss_forward = cpu_loss_forward,
    .loss_backward = cpu_loss_backward,
    .axpy = cpu_axpy,
    .adam_step = cpu_adam_step, /* lib/cpu/backend-cpu-optim.c */
    .sumsq = cpu_sumsq,
    .scale = cpu_scale,
    .conv_ex_workspace = cpu_conv_ex_workspace, /* lib/cpu/backend-cpu-pool.c */
    .conv_ex_forward = cpu_conv_ex_forward,
    .pool2d_forward = cpu_pool2d_forward,
    .resize_bilinear = cpu_resize_bilinear,
};

backend_t backend_cpu_init(void)
{
    struct backend *be = calloc(1, sizeof *be);
    struct cpu_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        err_set("backend_cpu_init: out of memory");
        return NULL;
    }
    openblas_set_num_threads(1); /* see sgemm_par */
    be->iface = &cpu_iface;
    be->context = c;
    return be;
}
