/*
 * conv_engines: the convolution engines side by side on the model's layer
 * shapes (generator ngf 32 with its 9 residual blocks, PatchGAN ndf 32):
 * our float GEMM (lib/cpu/cpu-gemm.c), oneDNN in float and oneDNN in bf16
 * (lib/cpu/cpu-dnnl.c, reorders from and to our float NCHW tensors included).
 * For each layer and operation (forward, input gradient, weight gradient)
 * one line: best-of-N milliseconds and GFLOP/s of each engine.
 *   conv_engines [size=128] [batch=1] [runs=5]
 */
#include <stdio.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "bench.h"
#include "cpu/cpu-dnnl.h"
#include "base/err.h"
#include "backend/layers.h"
#include "base/rng.h"

struct layer {
    const char *name;
    int t; /* transposed */
    int cin, cout, k, stride, pad, out_pad;
    int div;   /* input resolution = size / div */
    int extra; /* reflection padding already added to the input */
};

/* engine 0: ours fp32, 1: oneDNN fp32, 2: oneDNN bf16; op 0 fwd, 1 dgrad, 2 wgrad */
static int call(backend_t be, struct cpu_dnnl *d, int engine, int op, const struct layer *L,
                const struct conv_shape *s, float *x, float *w, float *y, float *gx, float *gw)
{
    enum backend_precision p = engine == 2 ? BACKEND_BF16 : BACKEND_FP32;
    float *din = op == 1 ? gx : NULL, *dw = op == 2 ? gw : NULL;
    if (engine == 0) {
        if (op == 0)
            return L->t ? convt2d_forward(be, y, x, w, NULL, s) : conv2d_forward(be, y, x, w, NULL, s);
        return L->t ? convt2d_backward(be, din, dw, NULL, y, x, w, s)
                    : conv2d_backward(be, din, dw, NULL, y, x, w, s);
    }
    if (op == 0)
        return L->t ? cpu_dnnl_convt2d_forward(d, p, y, x, w, NULL, s)
                    : cpu_dnnl_conv2d_forward(d, p, y, x, w, NULL, s);
    return L->t ? cpu_dnnl_convt2d_backward(d, p, din, dw, NULL, y, x, w, s)
                : cpu_dnnl_conv2d_backward(d, p, din, dw, NULL, y, x, w, s);
}

int main(int argc, char **argv)
{
    err_init(argv[0]);
    int size = argc > 1 ? atoi(argv[1]) : 128, batch = argc > 2 ? atoi(argv[2]) : 1;
    int runs = argc > 3 ? atoi(argv[3]) : 5;
    if (size < 32 || batch < 1 || runs < 1)
        die("usage: conv_engines [size] [batch] [runs]");
    static const struct layer layers[] = {
        {"G c7 3-32", 0, 3, 32, 7, 1, 0, 0, 1, 6},       {"G down 32-64", 0, 32, 64, 3, 2, 1, 0, 1, 0},
        {"G down 64-128", 0, 64, 128, 3, 2, 1, 0, 2, 0}, {"G res 128", 0, 128, 128, 3, 1, 0, 0, 4, 2},
        {"G up 128-64", 1, 128, 64, 3, 2, 1, 1, 4, 0},   {"G up 64-32", 1, 64, 32, 3, 2, 1, 1, 2, 0},
        {"G c7 32-3", 0, 32, 3, 7, 1, 0, 0, 1, 6},       {"D 3-32", 0, 3, 32, 4, 2, 1, 0, 1, 0},
        {"D 32-64", 0, 32, 64, 4, 2, 1, 0, 2, 0},        {"D 64-128", 0, 64, 128, 4, 2, 1, 0, 4, 0},
        {"D 128-256", 0, 128, 256, 4, 1, 1, 0, 8, 0},    {"D 256-1", 0, 256, 1, 4, 1, 1, 0, 8, 1},
    };
    static const char *const opname[] = {"fwd", "dgrad", "wgrad"};
    backend_t be = backend_cpu_init();
    long allocs = 0;
    struct cpu_dnnl *d = cpu_dnnl_new(&allocs);
    if (!be || !d)
        die("%s", err_msg());
    printf("# size %d batch %d, oneDNN ISA %s; ms (best of %d) and GFLOP/s\n", size, batch,
           cpu_dnnl_isa_name(), runs);
    printf("%-14s %-5s %9s %7s %9s %7s %9s %7s\n", "layer", "op", "ours32", "GF/s", "dnnl32", "GF/s",
           "dnnl16", "GF/s");
    rng r;
    rng_seed(&r, 1);
    for (size_t li = 0; li < sizeof layers / sizeof *layers; li++) {
        const struct layer *L = &layers[li];
        int h = size / L->div + L->extra;
        struct conv_shape s;
        if ((L->t ? convt2d_shape(&s, batch, L->cin, h, h, L->cout, L->k, L->stride, L->pad, L->out_pad)
                  : conv2d_shape(&s, batch, L->cin, h, h, L->cout, L->k, L->stride, L->pad)))
            die("bad shape");
        long nx = (long)batch * L->cin * h * h, ny = (long)batch * L->cout * s.hout * s.wout;
        long nw = (long)L->cin * L->cout * L->k * L->k;
        double flop = 2.0 * nw * (L->t ? (double)batch * h * h : (double)batch * s.hout * s.wout);
        float *x = malloc(nx * sizeof(float)), *gx = malloc(nx * sizeof(float));
        float *y = malloc(ny * sizeof(float)), *w = malloc(nw * sizeof(float)),
              *gw = calloc(nw, sizeof(float));
        for (long i = 0; i < nx; i++)
            x[i] = rng_uniform_f32(&r, -1, 1);
        for (long i = 0; i < nw; i++)
            w[i] = rng_uniform_f32(&r, -0.1f, 0.1f);
        for (long i = 0; i < ny; i++)
            y[i] = rng_uniform_f32(&r, -1, 1);
        backend_reserve(be, L->t ? convt2d_workspace_bytes(be, &s) : conv2d_workspace_bytes(be, &s));
        for (int op = 0; op < 3; op++) {
            double best[3] = {1e9, 1e9, 1e9};
            /* engines interleaved, so that load from other processes hits them alike */
            for (int it = 0; it < runs + 1; it++)
                for (int e = 0; e < 3; e++) {
                    double t0 = bench_now();
                    if (call(be, d, e, op, L, &s, x, w, y, gx, gw))
                        die("%s %s engine %d: %s", L->name, opname[op], e, err_msg());
                    double t = bench_now() - t0;
                    if (it > 0 && t < best[e])
                        best[e] = t;
                }
            printf("%-14s %-5s", L->name, opname[op]);
            for (int e = 0; e < 3; e++)
                printf(" %9.3f %7.1f", best[e] * 1e3, flop / best[e] / 1e9);
            printf("\n");
            fflush(stdout);
        }
        free(x), free(gx), free(y), free(w), free(gw);
    }
    cpu_dnnl_free(d);
    backend_free(be);
    return 0;
}
