/*
 * resize: the bilinear resize of the FID Inception network's input
 * (PyTorch's half-pixel F.interpolate, or TensorFlow 1.x's legacy resize as
 * torch-fidelity), followed by out*mul + add, for the CUDA backend.
 *
 * One thread per output value computes its two taps and interpolates with
 * ops-math.cuh's formulas, which follow lib/cpu/backend-cpu-pool.c operation
 * by operation (the source coordinates in double or float as the CPU, and
 * no fused multiply-add anywhere), so GPU == CPU bit for bit.  The taps
 * cost a few flops per value, cheaper than a table in memory.
 */
#include "cuda-impl.h"
#include "ops-math.cuh"

#define RESIZE_THREADS 256

template <int TF1>
static __global__ void resize_kernel(float *out, const float *in, long total, int h, int w, int hout,
                                     int wout, float mul, float add)
{
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long)gridDim.x * blockDim.x) {
        int ox = (int)(i % wout);
        long t = i / wout;
        int oy = (int)(t % hout);
        long pl = t / hout;
        struct rs_tap ty = TF1 ? tap_tf1(oy, h, hout) : tap_half_pixel(oy, h, hout);
        struct rs_tap tx = TF1 ? tap_tf1(ox, w, wout) : tap_half_pixel(ox, w, wout);
        out[i] = resize_px(in + pl * h * w, w, ty, tx, TF1, mul, add);
    }
}

int cu_resize_bilinear(struct backend *be, float *out, const float *in, int planes, int h, int w, int hout,
                       int wout, enum resize_mode mode, float mul, float add)
{
    if (mode != RESIZE_HALF_PIXEL && mode != RESIZE_TF1)
        return err_set("resize_bilinear: unknown mode %d", (int)mode);
    long total = (long)planes * hout * wout;
    if (total <= 0)
        return 0;
    int blocks = cuda_blocks(be, total, RESIZE_THREADS);
    cudaStream_t st = cuda_ctx_of(be)->stream;
    if (mode == RESIZE_TF1)
        resize_kernel<1><<<blocks, RESIZE_THREADS, 0, st>>>(out, in, total, h, w, hout, wout, mul, add);
    else
        resize_kernel<0><<<blocks, RESIZE_THREADS, 0, st>>>(out, in, total, h, w, hout, wout, mul, add);
    return cuda_launched("resize_bilinear");
}
