/*
 * The CPU backend's bf16 convolutions on the CPU's bf16 units (oneDNN,
 * lib/cpu/cpu-dnnl.h) against its emulation (lib/cpu/backend-cpu-half.c, forced
 * with AGING_CPU_BF16=0), on the model's layer shapes at a small size:
 * forward, input gradient and weight gradient of conv2d and convt2d.
 *
 * Both round the same operands to bf16 the same way (round to nearest
 * even) and round the result again; only the order of the float sums
 * differs.  So a value agrees exactly or, where the float sum falls near a
 * rounding boundary, lands a bf16 step away (at most 2^-7 of it); where the
 * sum cancels, the float sums' own rounding error, relative to the terms
 * summed, is larger than that and one value in ten thousand lands two
 * steps away.  The tolerance is 2^-6 of the value plus 2^-8 of the tensor's
 * largest value x 1e-2, and 99.5% of the values must be equal bit for bit
 * (a path that skipped a rounding, or rounded differently, fails that).
 *
 * On a CPU without bf16 units both runs are the emulation: the test then
 * says so and checks only the fallback.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "check.h"
#include "cpu/cpu-dnnl.h"
#include "base/err.h"
#include "backend/layers.h"
#include "base/rng.h"

struct sh {
    const char *name;
    int t, n, cin, h, cout, k, stride, pad, out_pad;
};

/* the generator's and the discriminator's layers (ngf 32, ndf 32) at 32 px, batch 2 */
static const struct sh shapes[] = {
    {"G c7 3-32", 0, 2, 3, 38, 32, 7, 1, 0, 0},    {"G down 32-64", 0, 2, 32, 32, 64, 3, 2, 1, 0},
    {"G res 128", 0, 2, 128, 10, 128, 3, 1, 0, 0}, {"G up 128-64", 1, 2, 128, 8, 64, 3, 2, 1, 1},
    {"G up 64-32", 1, 2, 64, 16, 32, 3, 2, 1, 1},  {"G c7 32-3", 0, 2, 32, 38, 3, 7, 1, 0, 0},
    {"D 3-32", 0, 2, 3, 32, 32, 4, 2, 1, 0},       {"D 128-256", 0, 2, 128, 4, 256, 4, 1, 1, 0},
    {"D 256-1", 0, 2, 256, 3, 1, 4, 1, 1, 0},
};

struct run {
    float *out, *dx, *dw, *db;
};

static void run_free(struct run *r)
{
    free(r->out), free(r->dx), free(r->dw), free(r->db);
}

/* forward and backward of one shape on be (at its precision); dw and db
 * start from 1 so that their accumulation is checked too */
static int run_shape(backend_t be, const struct sh *c, const struct conv_shape *s, const float *x,
                     const float *w, const float *b, const float *g, struct run *r)
{
    long nx = (long)s->n * s->cin * s->h * s->w, ny = (long)s->n * s->cout * s->hout * s->wout;
    long nw = (long)s->cin * s->cout * s->k * s->k;
    r->out = malloc(ny * sizeof(float)), r->dx = malloc(nx * sizeof(float));
    r->dw = malloc(nw * sizeof(float)), r->db = malloc(s->cout * sizeof(float));
    if (!r->out || !r->dx || !r->dw || !r->db)
        return -1;
    for (long i = 0; i < nw; i++)
        r->dw[i] = 1.0f;
    for (int i = 0; i < s->cout; i++)
        r->db[i] = 1.0f;
    if (c->t)
        return convt2d_forward(be, r->out, x, w, b, s) ||
               convt2d_backward(be, r->dx, r->dw, r->db, g, x, w, s);
    return conv2d_forward(be, r->out, x, w, b, s) || conv2d_backward(be, r->dx, r->dw, r->db, g, x, w, s);
}

static int compare(const char *shape, const char *what, const float *got, const float *want, long n)
{
    double big = 0;
    for (long i = 0; i < n; i++)
        big = fmax(big, fabs(want[i]));
    long same = 0, bad = 0;
    double worst = 0; /* in units of the tolerance's 2^-8 x max|want| term */
    for (long i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]);
        same += got[i] == want[i];
        bad += !(d <= (4 * fabs(want[i]) + big * 1e-2) / 256);
        worst = fmax(worst, d * 256 / (big > 0 ? big : 1));
    }
    printf("# %-14s %-4s n=%-7ld exact %.2f%% max|d| %.2g of max|want|/256 %s\n", shape, what, n,
           100.0 * same / n, worst, bad ? "FAIL" : "");
    return bad || same < n - n / 200;
}

static int test_units_vs_emulation(void)
{
    if (!cpu_dnnl_bf16_available())
        printf("# no bf16 units here (or AGING_CPU_BF16=0): only the emulation runs\n");
    else
        printf("# bf16 units: %s\n", cpu_dnnl_isa_name());
    backend_t be = backend_cpu_init();
    EXPECT(be && backend_set_precision(be, BACKEND_BF16) == 0, "%s", err_msg());
    rng r;
    rng_seed(&r, 7);
    int bad = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const struct sh *c = &shapes[i];
        struct conv_shape s;
        EXPECT(
            (c->t ? convt2d_shape(&s, c->n, c->cin, c->h, c->h, c->cout, c->k, c->stride, c->pad, c->out_pad)
                  : conv2d_shape(&s, c->n, c->cin, c->h, c->h, c->cout, c->k, c->stride, c->pad)) == 0,
            "%s", err_msg());
        long nx = (long)s.n * s.cin * s.h * s.w, ny = (long)s.n * s.cout * s.hout * s.wout;
        long nw = (long)s.cin * s.cout * s.k * s.k;
        float *x = malloc(nx * sizeof(float)), *g = malloc(ny * sizeof(float));
        float *w = malloc(nw * sizeof(float)), *b = malloc(s.cout * sizeof(float));
        EXPECT(x && g && w && b, "out of memory");
        for (long j = 0; j < nx; j++)
            x[j] = rng_uniform_f32(&r, -1, 1);
        for (long j = 0; j < ny; j++)
            g[j] = rng_uniform_f32(&r, -1, 1);
        for (long j = 0; j < nw; j++)
            w[j] = rng_uniform_f32(&r, -0.2f, 0.2f);
        for (int j = 0; j < s.cout; j++)
            b[j] = rng_uniform_f32(&r, -0.5f, 0.5f);
        struct run hw = {0}, emu = {0};
        int rc = run_shape(be, c, &s, x, w, b, g, &hw);
        setenv("AGING_CPU_BF16", "0", 1);
        rc |= run_shape(be, c, &s, x, w, b, g, &emu);
        unsetenv("AGING_CPU_BF16");
        EXPECT(rc == 0, "%s: %s", c->name, err_msg());
        bad |= compare(c->name, "out", hw.out, emu.out, ny) | compare(c->name, "dx", hw.dx, emu.dx, nx) |
               compare(c->name, "dw", hw.dw, emu.dw, nw) | compare(c->name, "db", hw.db, emu.db, s.cout);
        run_free(&hw), run_free(&emu);
        free(x), free(g), free(w), free(b);
    }
    backend_free(be);
    return bad;
}

/* After one call per shape, later calls allocate nothing. */
static int test_no_allocation_after_warmup(void)
{
    backend_t be = backend_cpu_init();
    EXPECT(be && backend_set_precision(be, BACKEND_BF16) == 0, "%s", err_msg());
    const struct sh *c = &shapes[2];
    struct conv_shape s;
    EXPECT(conv2d_shape(&s, c->n, c->cin, c->h, c->h, c->cout, c->k, c->stride, c->pad) == 0, "%s",
           err_msg());
    long nx = (long)s.n * s.cin * s.h * s.w, ny = (long)s.n * s.cout * s.hout * s.wout,
         nw = (long)s.cin * s.cout * s.k * s.k;
    float *x = calloc(nx, sizeof(float)), *dx = calloc(nx, sizeof(float)), *y = calloc(ny, sizeof(float));
    float *w = calloc(nw, sizeof(float)), *dw = calloc(nw, sizeof(float));
    EXPECT(x && dx && y && w && dw, "out of memory");
    long before = 0;
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            before = backend_allocations(be);
        EXPECT(conv2d_forward(be, y, x, w, NULL, &s) == 0 &&
                   conv2d_backward(be, dx, dw, NULL, y, x, w, &s) == 0,
               "%s", err_msg());
    }
    long after = backend_allocations(be);
    free(x), free(dx), free(y), free(w), free(dw);
    backend_free(be);
    EXPECT(after == before, "%ld allocations after the warm-up", after - before);
    return 0;
}

CHECK_MAIN(T(test_units_vs_emulation), T(test_no_allocation_after_warmup))
