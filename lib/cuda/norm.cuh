/*
 * norm: what batch norm (batchnorm.cu) and instance norm (instnorm.cu)
 * share on the device, as lib/cpu/backend-cpu.c shares plane_stats and
 * norm_backward_group: one block handles one normalisation group (a
 * channel of n strided planes, or one plane), so its statistics are one
 * deterministic block reduction (reduce.cuh) and the normalised values are
 * written by the same block right after, while the group is hot in L2.
 *
 * Host-callable like reduce.cuh (a "block" of one thread): tests/cuda runs
 * these very functions against the CPU backend.
 */
#pragma once

#include "reduce.cuh"

/* Threads of every norm block: a group is up to 256x256 (x batch) values
 * and there may be only a few dozen groups, so big blocks keep enough loads
 * in flight per multiprocessor. */
#define NORM_THREADS 512

/* Mean and biased variance (two passes, as plane_stats) of nseg strided
 * segments of hw values, returned to every thread of the block. */
OPS_HD void group_stats(const float *x, int nseg, long stride, long hw, double *mean, double *var, double *sh)
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
OPS_HD void group_apply(float *out, const float *x, int nseg, long stride, long hw, float a, float b)
{
    for (int i = 0; i < nseg; i++)
        for (long j = RED_TID; j < hw; j += RED_NT) {
            long p = (long)i * stride + j;
            out[p] = norm_apply(x[p], a, b);
        }
}

/* norm_backward_group of lib/cpu/backend-cpu.c for one group, by the whole
 * block: sums of g and g*xhat in double; dbeta/dgamma (may be NULL) +=
 * their float casts; din (may be NULL) = r*gamma*(g - mean(g) - xhat *
 * mean(g*xhat)), the means 0 outside training. */
OPS_HD void group_backward(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                           float m, float r, float gam, int nseg, long stride, long hw, int training,
                           double *sh)
{
    double ag = 0.0, agx = 0.0;
    for (int i = 0; i < nseg; i++)
        for (long j = RED_TID; j < hw; j += RED_NT) {
            long p = (long)i * stride + j;
            float g = dout[p];
            ag = d_add(ag, (double)g);
            agx = d_add(agx, d_mul((double)g, (double)norm_xhat(in[p], m, r)));
        }
    double sg = block_sum(ag, sh);
    double sgx = block_sum(agx, sh);
    if (RED_TID == 0) {
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
        for (long j = RED_TID; j < hw; j += RED_NT) {
            long p = (long)i * stride + j;
            din[p] = norm_din(dout[p], in[p], m, r, k, mg, mgx);
        }
}

/* Channel ch of batchnorm_forward (its n planes of hw values, c*hw apart):
 * batch statistics and the running ones' update in training, the running
 * statistics otherwise; mean/rstd saved for the backward; out written. */
OPS_HD void bn_forward_channel(float *out, float *mean, float *rstd, const float *in, const float *gamma,
                               const float *beta, float *run_mean, float *run_var, int n, int c, long hw,
                               int training, double momentum, double eps, int ch, double *sh)
{
    long stride = (long)c * hw;
    const float *x = in + (long)ch * hw;
    double m, r;
    if (training) {
        double v;
        group_stats(x, n, stride, hw, &m, &v, sh);
        r = rstd_of(v, eps);
        if (RED_TID == 0) {
            run_mean[ch] = bn_run_mean(momentum, m, run_mean[ch]);
            run_var[ch] = bn_run_var(momentum, v, (long)n * hw, run_var[ch]);
        }
    } else {
        m = (double)run_mean[ch];
        r = rstd_of((double)run_var[ch], eps);
    }
    if (RED_TID == 0) {
        mean[ch] = (float)m;
        rstd[ch] = (float)r;
    }
    float a, b;
    bn_coefs(m, r, gamma ? (double)gamma[ch] : 1.0, beta ? (double)beta[ch] : 0.0, &a, &b);
    group_apply(out + (long)ch * hw, x, n, stride, hw, a, b);
}

/* Channel ch of batchnorm_backward (din, dgamma, dbeta may be NULL). */
OPS_HD void bn_backward_channel(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                                const float *mean, const float *rstd, const float *gamma, int n, int c,
                                long hw, int training, int ch, double *sh)
{
    long off = (long)ch * hw;
    group_backward(din ? din + off : NULL, dgamma ? dgamma + ch : NULL, dbeta ? dbeta + ch : NULL, dout + off,
                   in + off, mean[ch], rstd[ch], gamma ? gamma[ch] : 1.0f, n, (long)c * hw, hw, training, sh);
}

/* Plane pl of instnorm_forward: its statistics, saved, and out = x*r - m*r. */
OPS_HD void in_forward_plane(float *out, float *mean, float *rstd, const float *in, long hw, double eps,
                             int pl, double *sh)
{
    const float *x = in + (long)pl * hw;
    double m, v;
    group_stats(x, 1, hw, hw, &m, &v, sh);
    double r = rstd_of(v, eps);
    if (RED_TID == 0) {
        mean[pl] = (float)m;
        rstd[pl] = (float)r;
    }
    float a, b;
    in_coefs(m, r, &a, &b);
    group_apply(out + (long)pl * hw, x, 1, hw, hw, a, b);
}

/* Plane pl of instnorm_backward: batch norm's group backward with one
 * segment, gamma 1 and training statistics. */
OPS_HD void in_backward_plane(float *din, const float *dout, const float *in, const float *mean,
                              const float *rstd, long hw, int pl, double *sh)
{
    long off = (long)pl * hw;
    group_backward(din + off, NULL, NULL, dout + off, in + off, mean[pl], rstd[pl], 1.0f, 1, hw, hw, 1, sh);
}
