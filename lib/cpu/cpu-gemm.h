/*
 * cpu-gemm: the CPU backend's own single-precision GEMM for the convolution
 * forward passes, C [m,n] = A [m,k] @ B [k,n] (+ bias [m]), with B read
 * either from a row-major matrix or straight from an image as its im2col
 * matrix (the im2col is fused into the packing of B, no [k,n] buffer).
 *
 * Packed panels and an FMA micro-kernel compiled for AVX-512 and AVX2+FMA
 * with target attributes and chosen at run time (__builtin_cpu_supports), so
 * the x86-64-v2 build keeps running anywhere: without either ISA
 * cpu_gemm_available() is 0 and the backend keeps its im2col + OpenBLAS
 * path.  AGING_CPU_GEMM=blas in the environment forces that path too.
 * The products are split over the OpenMP threads along n.
 *
 * cpu_gemm_wgrad is the weight-gradient form used by the backward passes:
 * the im2col matrix enters transposed (its pixels are the reduction), the
 * pixels are split between the threads.
 */
#pragma once

#include <stddef.h>

struct gemm_b {
    /* matrix: b [k,n] row-major with leading dimension ldb */
    const float *mat;
    long ldb;
    /* image (when mat is NULL): img [c,h,w], kernel k, stride s, zero padding p, output grid
     * ho x wo; row r of B is (channel, ki, kj) = (r / k^2, r / k % k, r % k), column is oy*wo+ox */
    const float *img;
    int c, h, w, k, s, p, ho, wo;
    /* kw > 0 (cpu_gemm / cpu_gemm_packed only): a k x kw kernel with padding p rows and pw
     * columns (row r of B is (r / (k*kw), r / kw % k, r % kw)); 0: square */
    int kw, pw;
};

/* B as the sliding windows of a square k x k kernel over img [c,h,w]. */
static inline struct gemm_b gemm_b_image(const float *img, int c, int h, int w, int k, int s, int p, int ho,
                                         int wo)
{
    return (struct gemm_b){.img = img, .c = c, .h = h, .w = w, .k = k, .s = s, .p = p, .ho = ho, .wo = wo};
}

/* The bias of a convolution done by GEMMs without one (the OpenBLAS path,
 * oneDNN's backward, the 16-bit emulation): out [n,c,hw] += b [c] (b may
 * be NULL); db [c] += sums over n and hw of dout [n,c,hw] (db may be NULL). */
void cpu_add_bias(float *out, const float *b, int n, int c, long hw);
void cpu_sum_bias(float *db, const float *dout, int n, int c, long hw);

/* 1 when a vector kernel exists for this CPU (and is not disabled). */
int cpu_gemm_available(void);

/* Scratch floats cpu_gemm needs for an m x k A with nthreads threads. */
size_t cpu_gemm_ws_floats(int m, int k, int nthreads);

/* c [m,n] (leading dimension ldc) = op(a) @ B + bias (bias may be NULL).
 * a_trans = 0: a is [m,k] with leading dimension lda; 1: a is [k,m] (element
 * (i,j) at a[j*lda+i]).  ws: cpu_gemm_ws_floats(m, k, omp_get_max_threads())
 * floats, 64-byte aligned. */
void cpu_gemm(float *c, long ldc, int m, int n, int k, const float *a, long lda, int a_trans,
              const struct gemm_b *b, const float *bias, float *ws);

/* cpu_gemm in two steps, for an A used against several B (the images of a
 * batch): cpu_gemm_pack_a packs a (as cpu_gemm reads it) into ap,
 * cpu_gemm_packed_a_floats(m, k) floats, 64-byte aligned; cpu_gemm_packed
 * then computes c = ap @ B + bias, and max(., 0) of that when relu (NaN and
 * -0 become +0), with ws: cpu_gemm_ws_floats(m, k, omp_get_max_threads()) -
 * cpu_gemm_packed_a_floats(m, k) floats, 64-byte aligned.  The same sums as
 * cpu_gemm's, bit for bit. */
size_t cpu_gemm_packed_a_floats(int m, int k);
void cpu_gemm_pack_a(float *ap, const float *a, long lda, int a_trans, int m, int k);
void cpu_gemm_packed(float *c, long ldc, int m, int n, int k, const float *ap, const struct gemm_b *b,
                     const float *bias, int relu, float *ws);

/* Scratch floats cpu_gemm_wgrad needs for an m x n C with nthreads threads. */
size_t cpu_gemm_wgrad_ws_floats(int m, int n, int nthreads);

/* The weight-gradient product of a convolution: c [m,n] (leading dimension
 * ldc) += a [m,k] (leading dimension lda) @ col^T, where col [n,k] is the
 * im2col matrix of the image b (b->mat must be NULL; k = b->ho * b->wo
 * pixels, n = b->c * b->k^2 rows).  The pixels (the long dimension) are
 * split between the OpenMP threads; each sums its share in its own
 * partial C, and the partials are added to c in thread order, so the result
 * depends on the thread count but not on the scheduling.  ws:
 * cpu_gemm_wgrad_ws_floats(m, n, omp_get_max_threads()) floats, 64-byte
 * aligned. */
void cpu_gemm_wgrad(float *c, long ldc, int m, int n, int k, const float *a, long lda, const struct gemm_b *b,
                    float *ws);
