/*
 * batchnorm: BatchNorm2d forward and backward for the CUDA backend, with
 * the semantics of lib/backend/layers.h and the arithmetic of lib/cpu/backend-cpu.c.
 *
 * One block per channel (its n planes of hw values, strided by c*hw): the
 * batch statistics are deterministic double reductions (norm.cuh), the
 * running statistics are updated by the block's first thread with the
 * unbiased variance, and the same block then writes the normalised output,
 * so a channel needs no second launch and no atomics.  Evaluation mode
 * copies the running statistics into mean/rstd for the backward.
 */
#include "cuda-impl.h"
#include "norm.cuh"

static __global__ void __launch_bounds__(NORM_THREADS)
    bn_fwd_kernel(float *out, float *mean, float *rstd, const float *in, const float *gamma,
                  const float *beta, float *run_mean, float *run_var, int n, int c, long hw, int training,
                  double momentum, double eps)
{
    __shared__ double sh[RED_SHARED];
    for (int ch = blockIdx.x; ch < c; ch += gridDim.x)
        bn_forward_channel(out, mean, rstd, in, gamma, beta, run_mean, run_var, n, c, hw, training, momentum,
                           eps, ch, sh);
}

static __global__ void __launch_bounds__(NORM_THREADS)
    bn_bwd_kernel(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                  const float *mean, const float *rstd, const float *gamma, int n, int c, long hw,
                  int training)
{
    __shared__ double sh[RED_SHARED];
    for (int ch = blockIdx.x; ch < c; ch += gridDim.x)
        bn_backward_channel(din, dgamma, dbeta, dout, in, mean, rstd, gamma, n, c, hw, training, ch, sh);
}

int cu_batchnorm_forward(struct backend *be, float *out, float *mean, float *rstd, const float *in,
                         const float *gamma, const float *beta, float *run_mean, float *run_var, int n, int c,
                         int hw, int training, double momentum, double eps)
{
    if (c <= 0)
        return 0;
    bn_fwd_kernel<<<cuda_blocks(be, c, 1), NORM_THREADS, 0, cuda_ctx_of(be)->stream>>>(
        out, mean, rstd, in, gamma, beta, run_mean, run_var, n, c, hw, training, momentum, eps);
    return cuda_launched("batchnorm_forward");
}

int cu_batchnorm_backward(struct backend *be, float *din, float *dgamma, float *dbeta, const float *dout,
                          const float *in, const float *mean, const float *rstd, const float *gamma, int n,
                          int c, int hw, int training)
{
    if (c <= 0)
        return 0;
    bn_bwd_kernel<<<cuda_blocks(be, c, 1), NORM_THREADS, 0, cuda_ctx_of(be)->stream>>>(
        din, dgamma, dbeta, dout, in, mean, rstd, gamma, n, c, hw, training);
    return cuda_launched("batchnorm_backward");
}
