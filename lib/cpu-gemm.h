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
};

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
