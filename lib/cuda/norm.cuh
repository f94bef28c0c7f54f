/*
 * norm: what batch norm (batchnorm.cu) and instance norm (instnorm.cu)
 * share on the device, as lib/backend-cpu.c shares plane_stats and
 * norm_backward_group: one block handles one normalisation group (a
 * channel of n strided planes, or one plane), so its statistics are one
 * deterministic block reduction (reduce.cuh) and the normalised values are
 * written by the same block right after, while the group is hot in L2.
 */
#pragma once

#include "reduce.cuh"

/* Threads of every norm block: a group is up to 256x256 (x batch) values
 * and there may be only a few dozen groups, so big blocks keep enough loads
 * in flight per multiprocessor. */
#define NORM_THREADS 512

/* Mean and biased variance (two passes, as plane_stats) of nseg strided
 * segments of hw values, returned to every thread of the block. */
static __device__ void group_stats(const float *x, int nseg, long stride, long hw, double *mean, double *var,
                                   double *sh)
{
    double cnt = d_mul((double)nseg, (double)hw);
    auto value = [=](long p) { return (double)x[p]; };
    double s = block_sum_segs(nseg, stride, hw, value, sh);
    double m = d_div(s, cnt);
    auto sq_dev = [=](long p) { return var_term(x[p], m); };
    double v = block_sum_segs(nseg, stride, hw, sq_dev, sh);
    *mean = m;
    *var = d_div(v, cnt);
}

/* out = x*a + b over the group (out may be x: every value is read by the
 * thread that writes it, after the statistics are complete). */
static __device__ void group_apply(float *out, const float *x, int nseg, long stride, long hw, float a,
                                   float b)
{
    for (int i = 0; i < nseg; i++)
        for (long j = threadIdx.x; j < hw; j += blockDim.x) {
            long p = (long)i * stride + j;
            out[p] = norm_apply(x[p], a, b);
        }
}

/* norm_backward_group of lib/backend-cpu.c for one group, by the whole
 * block: sums of g and g*xhat in double; dbeta/dgamma (may be NULL) +=
 * their float casts; din (may be NULL) = r*gamma*(g - mean(g) - xhat *
 * mean(g*xhat)), the means 0 outside training. */
static __device__ void group_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                                      const float *in, float m, float r, float gam, int nseg, long stride,
                                      long hw, int training, double *sh)
{
    double ag = 0.0, agx = 0.0;
    for (int i = 0; i < nseg; i++)
        for (long j = threadIdx.x; j < hw; j += blockDim.x) {
            long p = (long)i * stride + j;
            float g = dout[p];
            ag = d_add(ag, (double)g);
            agx = d_add(agx, d_mul((double)g, (double)norm_xhat(in[p], m, r)));
        }
    double sg = block_sum(ag, sh);
    double sgx = block_sum(agx, sh);
    if (threadIdx.x == 0) {
        if (dbeta)
            *dbeta = f_add(*dbeta, (float)sg);
        if (dgamma)
            *dgamma = f_add(*dgamma, (float)sgx);
    }
    if (!din)
        return;
    double cnt = d_mul((double)nseg, (double)hw);
    float k = f_mul(r, gam);
    float mg = training ? (float)d_div(sg, cnt) : 0.0f;
    float mgx = training ? (float)d_div(sgx, cnt) : 0.0f;
    for (int i = 0; i < nseg; i++)
        for (long j = threadIdx.x; j < hw; j += blockDim.x) {
            long p = (long)i * stride + j;
            din[p] = norm_din(dout[p], in[p], m, r, k, mg, mgx);
        }
}
