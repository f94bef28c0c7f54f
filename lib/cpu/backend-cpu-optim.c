/*
 * backend-cpu-optim: the CPU backend's optimiser ops (Adam update,
 * per-tensor sums of squares for gradient-norm clipping, scaling), split from
 * backend-cpu.c so that file stays about layers.  Reached through the
 * vtable entries adam_step / sumsq / scale (lib/backend/backend-impl.h) by
 * lib/nn/optim.c.
 *
 * Adam reproduces PyTorch 1.13's CPU kernels bit for bit: its vectorised
 * add(alpha) and addcmul are compiled into fused multiply-adds (checked
 * against torch: v = fma((1-b2)*g, g, b2*v) matches, the unfused form
 * differs in ~15% of elements), so we call fmaf exactly where torch fuses.
 * Compiled with -std=c11 the compiler never contracts on its own.
 */
#include <math.h>
#include <omp.h>

#include "cpu-impl.h"

int cpu_adam_step(struct backend *be, float *param, const float *grad, float *exp_avg, float *exp_avg_sq,
                  long n, double lr, double beta1, double beta2, double eps, double weight_decay, long step)
{
    (void)be;
    /* the Python-side scalars, in double, then cast once as torch does when
     * it hands a Python float to a float32 kernel */
    double bc1 = 1.0 - pow(beta1, (double)step);
    double bc2 = 1.0 - pow(beta2, (double)step);
    float neg_step_size = (float)(-(lr / bc1));
    float bc2_sqrt = (float)sqrt(bc2);
    float wd = (float)weight_decay, b1 = (float)beta1, b2 = (float)beta2;
    float c1 = (float)(1.0 - beta1), c2 = (float)(1.0 - beta2), feps = (float)eps;
    int use_wd = weight_decay != 0;
#pragma omp parallel for schedule(static) if (n > 32768)
    for (long i = 0; i < n; i++) {
        float g = use_wd ? fmaf(param[i], wd, grad[i]) : grad[i];
        float m = fmaf(g, c1, exp_avg[i] * b1);
        float v = fmaf(c2 * g, g, exp_avg_sq[i] * b2);
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        float denom = sqrtf(v) / bc2_sqrt + feps;
        param[i] = param[i] + (neg_step_size * m) / denom;
    }
    return 0;
}

/* Sums of squares in fixed blocks, added in block order: the result does not
 * depend on how OpenMP shares the blocks out. */
#define SUMSQ_BLOCK 8192
#define SUMSQ_CHUNK 256 /* blocks summed per parallel region (stack array) */

static double block_sumsq(const float *x, long n)
{
    double s = 0;
    for (long j = 0; j < n; j++)
        s += (double)x[j] * x[j];
    return s;
}

int cpu_sumsq(struct backend *be, double *out, const float *x, const long *sizes, int count)
{
    (void)be;
    for (int r = 0; r < count; r++) {
        long n = sizes[r];
        if (n <= SUMSQ_BLOCK) {
            out[r] = block_sumsq(x, n);
        } else {
            double part[SUMSQ_CHUNK], s = 0;
            long nblocks = (n + SUMSQ_BLOCK - 1) / SUMSQ_BLOCK;
            for (long b0 = 0; b0 < nblocks; b0 += SUMSQ_CHUNK) {
                int nb = (int)(nblocks - b0 < SUMSQ_CHUNK ? nblocks - b0 : SUMSQ_CHUNK);
#pragma omp parallel for schedule(static)
                for (int b = 0; b < nb; b++) {
                    long lo = (b0 + b) * SUMSQ_BLOCK;
                    long len = n - lo < SUMSQ_BLOCK ? n - lo : SUMSQ_BLOCK;
                    part[b] = block_sumsq(x + lo, len);
                }
                for (int b = 0; b < nb; b++)
                    s += part[b];
            }
            out[r] = s;
        }
        x += n;
    }
    return 0;
}

int cpu_scale(struct backend *be, float *x, float a, long n)
{
    (void)be;
#pragma omp parallel for schedule(static) if (n > 32768)
    for (long i = 0; i < n; i++)
        x[i] *= a;
    return 0;
}
