/*
 * train_step: latency of one CycleGAN training step (lib/nn/cyclegan.h:
 * generators, then DX, then DY, with Adam updates) on the CPU backend.
 * Prints one line: median milliseconds per step over N steps after one
 * warmup step, images/s, and the convolution GFLOP of a step (multiply-adds
 * x2; forward, data- and weight-gradient all counted, see below).
 *   train_step [size=256] [ngf=32] [blocks=9] [ndf=32] [batch=1] [steps=3] [precision=fp32]
 */
#include <stdio.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "bench.h"
#include "nn/cyclegan.h"
#include "base/err.h"
#include "base/rng.h"

/* conv MACs of one generator forward (c7s1-ngf, two downs, blocks, two ups, c7s1-3) */
static double gen_macs(double s, double c, int nb)
{
    double h = s / 4;
    return s * s * (3 * 49 * c) + s / 2 * s / 2 * (c * 9 * 2 * c) + h * h * (2 * c * 9 * 4 * c) +
           2 * nb * h * h * (4 * c * 9 * 4 * c) + h * h * (4 * c * 9 * 2 * c) +
           s / 2 * s / 2 * (2 * c * 9 * c) + s * s * (c * 49 * 3);
}

/* conv MACs of one PatchGAN forward: k4 s2 p1 x3, k4 s1 p1 x2 */
static double disc_macs(int s, double d)
{
    int h1 = s / 2, h2 = h1 / 2, h3 = h2 / 2, h4 = h3 - 1, h5 = h4 - 1;
    return (double)h1 * h1 * 3 * 16 * d + (double)h2 * h2 * d * 16 * 2 * d +
           (double)h3 * h3 * 2 * d * 16 * 4 * d + (double)h4 * h4 * 4 * d * 16 * 8 * d +
           (double)h5 * h5 * 8 * d * 16;
}

int main(int argc, char **argv)
{
    err_init(argv[0]);
    int size = argc > 1 ? atoi(argv[1]) : 256, ngf = argc > 2 ? atoi(argv[2]) : 32;
    int nb = argc > 3 ? atoi(argv[3]) : 9, ndf = argc > 4 ? atoi(argv[4]) : 32;
    int batch = argc > 5 ? atoi(argv[5]) : 1, steps = argc > 6 ? atoi(argv[6]) : 3;
    enum backend_precision prec = BACKEND_FP32;
    if (size < 32 || ngf < 1 || nb < 0 || ndf < 1 || batch < 1 || steps < 1 || steps > 1000 ||
        (argc > 7 && backend_precision_parse(argv[7], &prec)))
        die("usage: train_step [size] [ngf] [blocks] [ndf] [batch] [steps] [fp32|bf16|fp16]");
    backend_t be = backend_cpu_init();
    if (!be || backend_set_precision(be, prec))
        die("%s", err_msg());
    struct cyclegan_config cfg;
    cyclegan_config_default(&cfg);
    cfg.gen.ngf = ngf, cfg.gen.n_blocks = nb, cfg.disc.ndf = ndf;
    cfg.batch = batch, cfg.size = size;
    struct cyclegan *cg = cyclegan_new(be, &cfg);
    if (!cg)
        die("%s", err_msg());
    size_t nx = (size_t)batch * 3 * size * size;
    float *x = malloc(nx * sizeof(float)), *y = malloc(nx * sizeof(float));
    rng r;
    rng_seed(&r, 1);
    for (size_t i = 0; i < nx; i++)
        x[i] = rng_uniform_f32(&r, -1, 1);
    for (size_t i = 0; i < nx; i++)
        y[i] = rng_uniform_f32(&r, -1, 1);
    /* 6 generator passes and 6 discriminator passes (2 in the generator
     * step, 2 each in the DX and DY steps), each forward + dX + dW ~ 3x the
     * forward MACs (the first layers' unneeded dX counted too) */
    double gflop = 3 * 2 * batch * (6 * gen_macs(size, ngf, nb) + 6 * disc_macs(size, ndf)) / 1e9;
    struct cyclegan_losses l;
    if (cyclegan_train_step(cg, x, y, batch, &l))
        die("%s", err_msg());
    double *t = malloc(steps * sizeof(double));
    for (int i = 0; i < steps; i++) {
        double t0 = bench_now();
        if (cyclegan_train_step(cg, x, y, batch, &l))
            die("%s", err_msg());
        t[i] = bench_now() - t0;
    }
    double med = bench_median(t, steps);
    printf("c_ms %.1f images_per_s %.3f gflop %.1f gflops %.1f gen_loss %.6f\n", med * 1e3, batch / med,
           gflop, gflop / med, l.gen);
    free(t), free(x), free(y);
    cyclegan_free(cg), backend_free(be);
    return 0;
}
