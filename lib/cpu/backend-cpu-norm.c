/*
 * backend-cpu-norm: the CPU backend's batch and instance norms (forward and
 * backward), their statistics summed in double over fixed lanes so that the
 * order, and so the result, does not depend on the vector width.
 */
#include <math.h>
#include <stdlib.h>

#include "cpu-impl.h"

// ----------------------------------------------------------------------------
// norms

/* The double sums of the norms run in SUM_LANES independent partial sums
 * (value j of a segment goes to lane j % SUM_LANES; the lanes are added in
 * order at the end) rather than one chain of dependent adds: the compiler
 * keeps the lanes in vector registers, and the order is fixed, so the sums
 * are the same on every ISA and for every thread count. */
#define SUM_LANES 16

/* The norms' loops are memory-bound on SSE only once their data leaves the
 * caches; a batch-norm group (up to a few hundred KB) is walked three times
 * and stays in L2, where wider vectors pay.  So they are also compiled for
 * AVX2 and AVX-512 and the loader picks the clone the CPU runs (ifunc).
 * Under -std=c11 nothing is contracted into FMAs, so every clone computes
 * the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang_analyzer__)
#define NORM_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NORM_CLONES
#endif

static double lanes_total(const double *acc)
{
    double s = 0;
    for (int l = 0; l < SUM_LANES; l++)
        s += acc[l];
    return s;
}

/* acc[lane] += p[j] */
NORM_CLONES static void lanes_sum(double *acc, const float *p, long hw)
{
    long j = 0;
    for (; j + SUM_LANES <= hw; j += SUM_LANES)
#pragma omp simd
        for (int l = 0; l < SUM_LANES; l++)
            acc[l] += p[j + l];
    for (int l = 0; j < hw; j++, l++)
        acc[l] += p[j];
}

/* acc[lane] += (p[j] - m)^2 */
NORM_CLONES static void lanes_sumsq_dev(double *acc, const float *p, long hw, double m)
{
    long j = 0;
    for (; j + SUM_LANES <= hw; j += SUM_LANES)
#pragma omp simd
        for (int l = 0; l < SUM_LANES; l++) {
            double d = p[j + l] - m;
            acc[l] += d * d;
        }
    for (int l = 0; j < hw; j++, l++) {
        double d = p[j] - m;
        acc[l] += d * d;
    }
}

/* mean and biased variance of n strided segments of hw values (two passes) */
static void plane_stats(const float *x, int n, long stride, long hw, double *mean, double *var)
{
    double acc[SUM_LANES] = {0};
    for (int i = 0; i < n; i++)
        lanes_sum(acc, x + i * stride, hw);
    double m = lanes_total(acc) / ((double)n * hw);
    for (int l = 0; l < SUM_LANES; l++)
        acc[l] = 0;
    for (int i = 0; i < n; i++)
        lanes_sumsq_dev(acc, x + i * stride, hw, m);
    *mean = m;
    *var = lanes_total(acc) / ((double)n * hw);
}

NORM_CLONES static void affine_planes(float *out, const float *in, int n, long stride, long hw, float a,
                                      float b)
{
    for (int i = 0; i < n; i++) {
        const float *p = in + i * stride;
        float *o = out + i * stride;
#pragma omp simd
        for (long j = 0; j < hw; j++)
            o[j] = p[j] * a + b;
    }
}

int cpu_batchnorm_forward(struct backend *be, float *out, float *mean, float *rstd, const float *in,
                          const float *gamma, const float *beta, float *run_mean, float *run_var, int n,
                          int c, int hw, int training, double momentum, double eps)
{
    (void)be;
    long cnt = (long)n * hw;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double m, v, r;
        if (training) {
            plane_stats(in + (long)ch * hw, n, (long)c * hw, hw, &m, &v);
            r = 1.0 / sqrt(v + eps);
            run_mean[ch] = (float)(momentum * m + (1 - momentum) * run_mean[ch]);
            run_var[ch] = (float)(momentum * v * cnt / (double)(cnt - 1) + (1 - momentum) * run_var[ch]);
        } else {
            m = run_mean[ch];
            r = 1.0 / sqrt((double)run_var[ch] + eps);
        }
        mean[ch] = (float)m;
        rstd[ch] = (float)r;
        double a = r * (gamma ? gamma[ch] : 1.0);
        double b = (beta ? beta[ch] : 0.0) - m * a;
        affine_planes(out + (long)ch * hw, in + (long)ch * hw, n, (long)c * hw, hw, (float)a, (float)b);
    }
    return 0;
}

/* Shared by batch and instance norm: one group of n segments of hw values.
 * training: din = rstd*gamma*(g - mean(g) - xhat*mean(g*xhat)); otherwise the
 * statistics are constants and din = rstd*gamma*g. */
NORM_CLONES static void norm_backward_group(float *din, float *dgamma, float *dbeta, const float *dout,
                                            const float *in, float m, float r, float gam, int n, long stride,
                                            long hw, int training)
{
    double ag[SUM_LANES] = {0}, agx[SUM_LANES] = {0};
    for (int i = 0; i < n; i++) {
        const float *g = dout + i * stride, *x = in + i * stride;
        long j = 0;
        for (; j + SUM_LANES <= hw; j += SUM_LANES)
#pragma omp simd
            for (int l = 0; l < SUM_LANES; l++) {
                ag[l] += g[j + l];
                agx[l] += (double)g[j + l] * ((x[j + l] - m) * r);
            }
        for (int l = 0; j < hw; j++, l++) {
            ag[l] += g[j];
            agx[l] += (double)g[j] * ((x[j] - m) * r);
        }
    }
    double sg = lanes_total(ag), sgx = lanes_total(agx);
    if (dbeta)
        *dbeta += (float)sg;
    if (dgamma)
        *dgamma += (float)sgx;
    if (!din)
        return;
    double cnt = (double)n * hw;
    float k = r * gam, mg = training ? (float)(sg / cnt) : 0.0f, mgx = training ? (float)(sgx / cnt) : 0.0f;
    for (int i = 0; i < n; i++) {
        const float *g = dout + i * stride, *x = in + i * stride;
        float *d = din + i * stride;
#pragma omp simd
        for (long j = 0; j < hw; j++)
            d[j] = k * (g[j] - mg - (x[j] - m) * r * mgx);
    }
}

int cpu_batchnorm_backward(struct backend *be, float *din, float *dgamma, float *dbeta, const float *dout,
                           const float *in, const float *mean, const float *rstd, const float *gamma, int n,
                           int c, int hw, int training)
{
    (void)be;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        long off = (long)ch * hw;
        norm_backward_group(din ? din + off : NULL, dgamma ? dgamma + ch : NULL, dbeta ? dbeta + ch : NULL,
                            dout + off, in + off, mean[ch], rstd[ch], gamma ? gamma[ch] : 1.0f, n,
                            (long)c * hw, hw, training);
    }
    return 0;
}

int cpu_instnorm_forward(struct backend *be, float *out, float *mean, float *rstd, const float *in,
                         int planes, int hw, double eps)
{
    (void)be;
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < planes; pl++) {
        double m, v;
        plane_stats(in + (long)pl * hw, 1, hw, hw, &m, &v);
        double r = 1.0 / sqrt(v + eps);
        mean[pl] = (float)m;
        rstd[pl] = (float)r;
        affine_planes(out + (long)pl * hw, in + (long)pl * hw, 1, hw, hw, (float)r, (float)(-m * r));
    }
    return 0;
}

int cpu_instnorm_backward(struct backend *be, float *din, const float *dout, const float *in,
                          const float *mean, const float *rstd, int planes, int hw)
{
    (void)be;
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < planes; pl++) {
        long off = (long)pl * hw;
        norm_backward_group(din + off, NULL, NULL, dout + off, in + off, mean[pl], rstd[pl], 1.0f, 1, hw, hw,
                            1);
    }
    return 0;
}
