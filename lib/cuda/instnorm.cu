/*
 * instnorm: InstanceNorm2d (no affine, no running statistics) forward and
 * backward for the CUDA backend, with the arithmetic of lib/cpu/backend-cpu.c.
 *
 * One block per plane: mean and biased variance by deterministic double
 * reductions (norm.cuh, shared with batchnorm.cu), saved to mean/rstd,
 * then the same block writes out = x*r - m*r.  The backward is batch
 * norm's group backward with one segment, gamma 1 and training statistics.
 */
#include "cuda-impl.h"
#include "norm.cuh"

static __global__ void __launch_bounds__(NORM_THREADS)
    in_fwd_kernel(float *out, float *mean, float *rstd, const float *in, int planes, long hw, double eps)
{
    __shared__ double sh[RED_SHARED];
    for (int pl = blockIdx.x; pl < planes; pl += gridDim.x)
        in_forward_plane(out, mean, rstd, in, hw, eps, pl, sh);
}

static __global__ void __launch_bounds__(NORM_THREADS)
    in_bwd_kernel(float *din, const float *dout, const float *in, const float *mean, const float *rstd,
                  int planes, long hw)
{
    __shared__ double sh[RED_SHARED];
    for (int pl = blockIdx.x; pl < planes; pl += gridDim.x)
        in_backward_plane(din, dout, in, mean, rstd, hw, pl, sh);
}

int cu_instnorm_forward(struct backend *be, float *out, float *mean, float *rstd, const float *in, int planes,
                        int hw, double eps)
{
    if (planes <= 0)
        return 0;
    in_fwd_kernel<<<cuda_blocks(be, planes, 1), NORM_THREADS, 0, cuda_ctx_of(be)->stream>>>(
        out, mean, rstd, in, planes, hw, eps);
    return cuda_launched("instnorm_forward");
}

int cu_instnorm_backward(struct backend *be, float *din, const float *dout, const float *in,
                         const float *mean, const float *rstd, int planes, int hw)
{
    if (planes <= 0 || !din)
        return 0;
    in_bwd_kernel<<<cuda_blocks(be, planes, 1), NORM_THREADS, 0, cuda_ctx_of(be)->stream>>>(
        din, dout, in, mean, rstd, planes, hw);
    return cuda_launched("instnorm_backward");
}
