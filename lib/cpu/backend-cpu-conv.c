/*
 * backend-cpu-conv: the CPU backend's float convolutions and their
 * workspace sizes (the conv2d / convt2d entries of its vtable, cpu-impl.h):
 * our packed GEMM (lib/cpu/cpu-gemm.h) with the im2col fused into the
 * packing, col2im where a col matrix is folded back, and the im2col +
 * OpenBLAS sgemm fallback split over the OpenMP threads (sgemm_par; see
 * backend-cpu.c for why OpenBLAS runs single-threaded).
 */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu-gemm.h"
#include "cpu-impl.h"

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

size_t cpu_conv2d_workspace(struct backend *be, const struct conv_shape *s)
{
    (void)be;
    return cpu_conv2d_ws_bytes(s);
}

size_t cpu_convt2d_workspace(struct backend *be, const struct conv_shape *s)
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
