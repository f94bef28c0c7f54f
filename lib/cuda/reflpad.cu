/*
 * reflpad: reflection padding of planes [h,w] -> [h+2p, w+2p] (PyTorch's
 * ReflectionPad2d) and its backward, for the CUDA backend.
 *
 * The forward is a gather (one thread per padded pixel, copied).  The
 * backward is a gather too: each input pixel adds up, in the CPU's order,
 * the few padded entries that copied it (ops-math.cuh reflpad_grad), so it
 * needs no atomics, is deterministic, and agrees with the CPU's scatter
 * (lib/cpu/backend-cpu.c) bit for bit.
 */
#include "cuda-impl.h"
#include "ops-math.cuh"

#define PAD_THREADS 256

static __global__ void reflpad_fwd_kernel(float *out, const float *in, long total, int h, int w, int pad)
{
    int ho = h + 2 * pad, wo = w + 2 * pad;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long)gridDim.x * blockDim.x) {
        int ox = (int)(i % wo);
        long t = i / wo;
        int oy = (int)(t % ho);
        long pl = t / ho;
        out[i] = in[(pl * h + reflect_index(oy - pad, h)) * w + reflect_index(ox - pad, w)];
    }
}

static __global__ void reflpad_bwd_kernel(float *din, const float *dout, long total, int h, int w, int pad)
{
    long plane_out = (long)(h + 2 * pad) * (w + 2 * pad);
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long)gridDim.x * blockDim.x) {
        int ix = (int)(i % w);
        long t = i / w;
        int iy = (int)(t % h);
        long pl = t / h;
        din[i] = reflpad_grad(dout + pl * plane_out, h, w, pad, iy, ix);
    }
}

int cu_reflpad_forward(struct backend *be, float *out, const float *in, int planes, int h, int w, int pad)
{
    long total = (long)planes * (h + 2 * pad) * (w + 2 * pad);
    if (total <= 0)
        return 0;
    reflpad_fwd_kernel<<<cuda_blocks(be, total, PAD_THREADS), PAD_THREADS, 0, cuda_ctx_of(be)->stream>>>(
        out, in, total, h, w, pad);
    return cuda_launched("reflpad_forward");
}

int cu_reflpad_backward(struct backend *be, float *din, const float *dout, int planes, int h, int w, int pad)
{
    long total = (long)planes * h * w;
    if (total <= 0)
        return 0;
    reflpad_bwd_kernel<<<cuda_blocks(be, total, PAD_THREADS), PAD_THREADS, 0, cuda_ctx_of(be)->stream>>>(
        din, dout, total, h, w, pad);
    return cuda_launched("reflpad_backward");
}
