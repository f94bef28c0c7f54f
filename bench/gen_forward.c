/*
 * gen_forward: latency of one generator forward (eval mode) on the CPU
 * backend.  Prints one line: median milliseconds over N runs after warmup,
 * and GFLOP/s (multiply-adds of the convolutions x2).
 *   gen_forward [size=256] [ngf=32] [blocks=9] [batch=1] [runs=10] [precision=fp32]
 */
#include <stdio.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "bench.h"
#include "base/err.h"
#include "nn/model.h"

int main(int argc, char **argv)
{
    err_init(argv[0]);
    int size = argc > 1 ? atoi(argv[1]) : 256, ngf = argc > 2 ? atoi(argv[2]) : 32;
    int nb = argc > 3 ? atoi(argv[3]) : 9, batch = argc > 4 ? atoi(argv[4]) : 1;
    int runs = argc > 5 ? atoi(argv[5]) : 10;
    enum backend_precision prec = BACKEND_FP32;
    if (size < 16 || ngf < 1 || nb < 0 || batch < 1 || runs < 1 || runs > 1000 ||
        (argc > 6 && backend_precision_parse(argv[6], &prec)))
        die("usage: gen_forward [size] [ngf] [blocks] [batch] [runs] [fp32|bf16|fp16]");
    backend_t be = backend_cpu_init();
    if (!be || backend_set_precision(be, prec))
        die("%s", err_msg());
    rng r;
    rng_seed(&r, 0);
    struct net *G = gen_new(be, &(struct gen_config){ngf, nb}, &r);
    struct net_acts *a = G ? net_acts_new(G, batch, size, size) : NULL;
    if (!a)
        die("%s", err_msg());
    net_set_training(G, 0);
    size_t nx = (size_t)batch * 3 * size * size;
    float *x = malloc(nx * sizeof(float));
    for (size_t i = 0; i < nx; i++)
        x[i] = rng_uniform_f32(&r, -1, 1);
    /* conv MACs: per output pixel cin*k*k*cout */
    double s = size, h = s / 4, c = ngf;
    double macs = s * s * (3 * 49 * c) + s / 2 * s / 2 * (c * 9 * 2 * c) + h * h * (2 * c * 9 * 4 * c) +
                  2 * nb * h * h * (4 * c * 9 * 4 * c) + h * h * (4 * c * 9 * 2 * c) +
                  s / 2 * s / 2 * (2 * c * 9 * c) + s * s * (c * 49 * 3);
    double gflop = 2 * macs * batch / 1e9;
    for (int i = 0; i < 2; i++)
        if (net_forward(a, x))
            die("%s", err_msg());
    double *t = malloc(runs * sizeof(double));
    for (int i = 0; i < runs; i++) {
        double t0 = bench_now();
        if (net_forward(a, x))
            die("%s", err_msg());
        t[i] = bench_now() - t0;
    }
    double med = bench_median(t, runs);
    printf("c_ms %.1f gflop %.2f gflops %.1f\n", med * 1e3, gflop, gflop / med);
    free(t), free(x);
    net_acts_free(a), net_free(G), backend_free(be);
    return 0;
}
