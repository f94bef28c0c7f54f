/*
 * bias: the convolutions' per-channel bias, kept apart from cuDNN so it is
 * added and reduced in float whatever precision the convolution ran in
 * (lib/backend/backend.h), exactly as the CPU backend's add_bias / sum_bias.
 *
 *   cu_add_bias: out[n,c,hw] += b[c]
 *   cu_sum_bias: db[c] += sum over n and hw of dout[n,c,hw]
 *
 * The sum is deterministic: one block per channel, each thread summing a
 * fixed stride of the channel's values in double, then a fixed-shape tree
 * in shared memory, so the same input always gives the same bits (the
 * trainer's runs are reproducible, and double keeps the 16 x 512 x 512
 * values of a large batch from losing float precision).
 */
#include "cuda-impl.h"

#define BIAS_THREADS 256 /* a power of two: the reduction tree halves it */
#define GRID_Y_MAX   65535

/* Grid: y over planes (n*c), x over the plane's pixels; both loop. */
__global__ void add_bias_k(float *out, const float *b, int c, long planes, long hw)
{
    for (long pl = blockIdx.y; pl < planes; pl += gridDim.y) {
        float bv = b[pl % c];
        float *o = out + pl * hw;
        for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < hw; i += (long)gridDim.x * blockDim.x)
            o[i] += bv;
    }
}

__global__ void sum_bias_k(float *db, const float *dout, int n, int c, long hw)
{
    __shared__ double part[BIAS_THREADS];
    for (int ch = blockIdx.x; ch < c; ch += gridDim.x) {
        double acc = 0.0;
        for (int i = 0; i < n; i++) {
            const float *g = dout + ((long)i * c + ch) * hw;
            for (long j = threadIdx.x; j < hw; j += BIAS_THREADS)
                acc += g[j];
        }
        part[threadIdx.x] = acc;
        __syncthreads();
        for (int half = BIAS_THREADS / 2; half > 0; half >>= 1) {
            if ((int)threadIdx.x < half)
                part[threadIdx.x] += part[threadIdx.x + half];
            __syncthreads();
        }
        if (threadIdx.x == 0)
            db[ch] += (float)part[0];
        __syncthreads(); /* part[0] is read before the next channel overwrites it */
    }
}

int cu_add_bias(struct backend *be, float *out, const float *b, int n, int c, long hw)
{
    if (!b)
        return 0;
    if (!out || n < 0 || c < 0 || hw < 0)
        return err_set("cuda: add_bias: bad arguments");
    long planes = (long)n * c;
    if (planes == 0 || hw == 0)
        return 0;
    /* enough blocks along x to fill the GPU when the planes are few */
    long per_plane = (hw + BIAS_THREADS - 1) / BIAS_THREADS;
    long want_x = ((long)cuda_ctx_of(be)->sm_count * 8 + planes - 1) / planes;
    dim3 grid((unsigned)(per_plane < want_x ? per_plane
                         : want_x < 1       ? 1
                                            : want_x),
              (unsigned)(planes < GRID_Y_MAX ? planes : GRID_Y_MAX));
    add_bias_k<<<grid, BIAS_THREADS, 0, cuda_ctx_of(be)->stream>>>(out, b, c, planes, hw);
    return cuda_launched("add_bias");
}

int cu_sum_bias(struct backend *be, float *db, const float *dout, int n, int c, long hw)
{
    if (!db)
        return 0;
    if (!dout || n < 0 || c < 0 || hw < 0)
        return err_set("cuda: sum_bias: bad arguments");
    if (c == 0)
        return 0;
    /* n or hw 0: the sum is 0 and db is unchanged, which the kernel also does */
    int blocks = c < (1 << 20) ? c : (1 << 20);
    sum_bias_k<<<blocks, BIAS_THREADS, 0, cuda_ctx_of(be)->stream>>>(db, dout, n, c, hw);
    return cuda_launched("sum_bias");
}
