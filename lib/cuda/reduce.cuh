/*
 * reduce: the block reductions every statistic of the CUDA backend goes
 * through (norm statistics, norm backward sums, row means, losses).
 *
 * All of them are deterministic by construction: thread t of a block of T
 * threads adds, in double and in a fixed order, the terms t, t+T, t+2T ...
 * of each segment, then the T partial sums are combined by a fixed shuffle
 * tree and a fixed tree over the warps.  Nothing depends on the grid size,
 * scheduling or atomics, so the same inputs give the same bits on every run
 * (T is a compile-time constant of each kernel).  The order differs from
 * the CPU's sequential double sums, which is the one place where GPU and
 * CPU statistics may differ (by an ulp of double, rarely visible in float).
 *
 * The functions are host-callable too, for tests/cuda: on the host a
 * "block" is one thread, so every sum is the plain sequential one.
 */
#pragma once

#include <cuda_runtime.h>

#include "ops-math.cuh"

#ifdef __CUDA_ARCH__
#define RED_TID threadIdx.x /* this thread's index in its block */
#define RED_NT  blockDim.x  /* the block's threads */
#else
#define RED_TID 0u
#define RED_NT  1u
#endif

/* doubles of __shared__ scratch one block_sum needs */
#define RED_SHARED 33

/* Lane 0 gets the sum of the warp's 32 values (fixed tree). */
static __device__ __forceinline__ double warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = d_add(v, __shfl_down_sync(0xffffffffu, v, o));
    return v;
}

/* The sum of v over the block, returned to every thread.  Every thread of
 * the block must call it (blockDim.x a multiple of 32, at most 1024); sh is
 * __shared__ double[RED_SHARED], reusable right after the call returns.
 * On the host: v itself (sh unused). */
OPS_HD double block_sum(double v, double *sh)
{
#ifdef __CUDA_ARCH__
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); /* a previous call's readers of sh[32] are done */
    if (lane == 0)
        sh[wid] = v;
    __syncthreads();
    if (wid == 0) {
        v = lane < nw ? sh[lane] : 0.0;
        v = warp_sum(v);
        if (lane == 0)
            sh[32] = v;
    }
    __syncthreads();
    return sh[32];
#else
    (void)sh;
    return v;
#endif
}

/* This thread's share of term(p) over p = i*stride + j, i < nseg, j < len
 * (nseg strided segments of len values), in a fixed order. */
template <class F> OPS_HD double thread_sum_segs(int nseg, long stride, long len, F term)
{
    double acc = 0.0;
    for (int i = 0; i < nseg; i++)
        for (long j = RED_TID; j < len; j += RED_NT)
            acc = d_add(acc, term((long)i * stride + j));
    return acc;
}

/* The block's sum of term(p) over the segments, returned to every thread. */
template <class F> OPS_HD double block_sum_segs(int nseg, long stride, long len, F term, double *sh)
{
    return block_sum(thread_sum_segs(nseg, stride, len, term), sh);
}
