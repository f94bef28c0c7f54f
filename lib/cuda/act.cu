/*
 * act: ReLU, LeakyReLU(0.2) and Tanh, forward and backward (from the
 * forward OUTPUT, so both run in place), for the CUDA backend.
 *
 * Elementwise grid-stride kernels, one instantiation per kind so the branch
 * on the kind is resolved at compile time; the arithmetic is ops-math.cuh's
 * act_fwd / act_bwd, checked against the CPU backend's ops by
 * tests/cuda/test_ops_math.cu (ReLU and LeakyReLU agree bit for bit; tanhf
 * is CUDA's, within 2 ulp of glibc's).
 */
#include "cuda-impl.h"
#include "ops-math.cuh"

#define ACT_THREADS 256

template <int K> static __global__ void act_fwd_kernel(float *out, const float *in, long n)
{
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        out[i] = act_fwd(in[i], (enum act_kind)K);
}

template <int K>
static __global__ void act_bwd_kernel(float *din, const float *dout, const float *out, long n)
{
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        din[i] = act_bwd(dout[i], out[i], (enum act_kind)K);
}

int cu_act_forward(struct backend *be, float *out, const float *in, long n, enum act_kind kind)
{
    if (n <= 0)
        return 0;
    int blocks = cuda_blocks(be, n, ACT_THREADS);
    cudaStream_t st = cuda_ctx_of(be)->stream;
    switch (kind) {
    case ACT_RELU: act_fwd_kernel<ACT_RELU><<<blocks, ACT_THREADS, 0, st>>>(out, in, n); break;
    case ACT_LRELU: act_fwd_kernel<ACT_LRELU><<<blocks, ACT_THREADS, 0, st>>>(out, in, n); break;
    case ACT_TANH: act_fwd_kernel<ACT_TANH><<<blocks, ACT_THREADS, 0, st>>>(out, in, n); break;
    default: return err_set("act_forward: unknown kind %d", (int)kind);
    }
    return cuda_launched("act_forward");
}

int cu_act_backward(struct backend *be, float *din, const float *dout, const float *out, long n,
                    enum act_kind kind)
{
    if (n <= 0)
        return 0;
    int blocks = cuda_blocks(be, n, ACT_THREADS);
    cudaStream_t st = cuda_ctx_of(be)->stream;
    switch (kind) {
    case ACT_RELU: act_bwd_kernel<ACT_RELU><<<blocks, ACT_THREADS, 0, st>>>(din, dout, out, n); break;
    case ACT_LRELU: act_bwd_kernel<ACT_LRELU><<<blocks, ACT_THREADS, 0, st>>>(din, dout, out, n); break;
    case ACT_TANH: act_bwd_kernel<ACT_TANH><<<blocks, ACT_THREADS, 0, st>>>(din, dout, out, n); break;
    default: return err_set("act_backward: unknown kind %d", (int)kind);
    }
    return cuda_launched("act_backward");
}
