/*
 * pool: max pooling and average pooling (with or without the padding in
 * the divisor) of the FID Inception network, for the CUDA backend.
 *
 * One thread per output value walks its window exactly as the CPU's
 * vectorised rows do per column (ops-math.cuh pool_out: rows top to
 * bottom, taps left to right, float sum divided once; max with NaN
 * winning), so the results agree with lib/cpu/backend-cpu-pool.c bit for bit.
 * Output images are out_bstride floats apart, so a branch can write its
 * channel slice of a concatenation directly.
 */
#include "cuda-impl.h"
#include "ops-math.cuh"

#define POOL_THREADS 256

static __global__ void pool_kernel(float *out, const float *in, struct pool_shape s, long total)
{
    long hwi = (long)s.h * s.w, hwo = (long)s.hout * s.wout;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long)gridDim.x * blockDim.x) {
        int ox = (int)(i % s.wout);
        long t = i / s.wout;
        int oy = (int)(t % s.hout);
        long pl = t / s.hout;
        out[pl / s.c * s.out_bstride + pl % s.c * hwo + (long)oy * s.wout + ox] =
            pool_out(in + pl * hwi, &s, oy, ox);
    }
}

int cu_pool2d_forward(struct backend *be, float *out, const float *in, const struct pool_shape *s)
{
    if (s->kind != POOL_MAX && s->kind != POOL_AVG && s->kind != POOL_AVG_EXCL_PAD)
        return err_set("pool2d: unknown kind %d", (int)s->kind);
    long total = (long)s->n * s->c * s->hout * s->wout;
    if (total <= 0)
        return 0;
    pool_kernel<<<cuda_blocks(be, total, POOL_THREADS), POOL_THREADS, 0, cuda_ctx_of(be)->stream>>>(
        out, in, *s, total);
    return cuda_launched("pool2d_forward");
}
