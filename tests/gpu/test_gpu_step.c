/*
 * test_gpu_step: whole CycleGAN training steps (lib/nn/cyclegan.h) on the
 * device under test against the CPU backend: the same config and seed
 * (ngf 8, 3 residual blocks, ndf 8, batch 2, 32x32), the same random
 * batches, three free-running steps on each backend.
 *
 *   fp32: losses and gradient norms of every step rel 1e-3; after the three
 *     steps every parameter in units of its net's lr, as the CPU's PyTorch
 *     parity test states it (tests/unit/test_train_step.c, TOL_TRAJ: Adam
 *     moves a parameter by about lr whatever its gradient, so a gradient that
 *     differs by rounding near eps or a kink can move one element by a
 *     fraction of lr): every element |d| <= 0.5 lr + 1e-5 |cpu|, and at most
 *     0.3% of a net's elements beyond 0.02 lr; BN running statistics 1e-5 +
 *     1e-4 |cpu|; num_batches_tracked and Adam step counts exact; then the
 *     evaluation losses rel 1e-3.
 *   bf16 and fp16 (both backends round the convolutions' operands alike,
 *     backend.h; fp16 with loss scaling): losses of every step rel 5e-2 and
 *     finite; the loss scale and skipped updates are printed.
 */
#include "gpu-check.h"

#include <stdint.h>

#include "nn/cyclegan.h"
#include "nn/model.h"
#include "base/rng.h"

#define STEPS 3
#define BATCH 2
#define SIZE  32

/* parameters after the steps, in units of lr (see above) */
#define P_MAX       0.5
#define P_BULK      0.02
#define P_BULK_FRAC 3e-3
#define BUF_ATOL    1e-5
#define BUF_RTOL    1e-4

static struct net *net_k(struct cyclegan *cg, int k)
{
    return k == 0 ? cg->G : k == 1 ? cg->F : k == 2 ? cg->DX : cg->DY;
}
static struct adam *opt_k(struct cyclegan *cg, int k)
{
    return k == 0 ? cg->opt_G : k == 1 ? cg->opt_F : k == 2 ? cg->opt_DX : cg->opt_DY;
}
static const char *const TAG[4] = {"G", "F", "DX", "DY"};

/* The two trainers and their input buffers, one per backend. */
struct run {
    struct cyclegan *cg[2];
    float *x[2], *y[2];
    struct cyclegan_losses l[2][STEPS];
    long allocs[2]; /* the device backend's allocations after the first step and after the last */
};

static void run_free(struct run *r)
{
    for (int k = 0; k < 2; k++) {
        cyclegan_free(r->cg[k]);
        backend_dealloc(gpu_be[k], r->x[k]);
        backend_dealloc(gpu_be[k], r->y[k]);
    }
}

/* Build both trainers at precision p and run STEPS steps on the same batches. */
static int run_steps(struct run *r, enum backend_precision p)
{
    struct cyclegan_config cfg;
    cyclegan_config_default(&cfg);
    cfg.gen = (struct gen_config){8, 3};
    cfg.disc = (struct disc_config){8};
    cfg.batch = BATCH, cfg.size = SIZE, cfg.seed = 1234;
    const long n = (long)BATCH * 3 * SIZE * SIZE;
    *r = (struct run){0};
    for (int k = 0; k < 2; k++) {
        EXPECT(backend_set_precision(gpu_be[k], p) == 0, "%s", err_msg());
        r->cg[k] = cyclegan_new(gpu_be[k], &cfg);
        EXPECT(r->cg[k], "%s: cyclegan_new: %s", backend_name(gpu_be[k]), err_msg());
        r->x[k] = gpu_put(gpu_be[k], NULL, n);
        r->y[k] = gpu_put(gpu_be[k], NULL, n);
    }
    float *hx = malloc(n * sizeof(float)), *hy = malloc(n * sizeof(float));
    rng data;
    rng_seed(&data, 42);
    for (int s = 0; s < STEPS; s++) {
        for (long i = 0; i < n; i++)
            hx[i] = rng_uniform_f32(&data, -1, 1);
        for (long i = 0; i < n; i++)
            hy[i] = rng_uniform_f32(&data, -1, 1);
        for (int k = 0; k < 2; k++) {
            EXPECT(backend_upload(gpu_be[k], r->x[k], hx, n * sizeof(float)) == 0 &&
                       backend_upload(gpu_be[k], r->y[k], hy, n * sizeof(float)) == 0,
                   "%s", err_msg());
            EXPECT(cyclegan_train_step(r->cg[k], r->x[k], r->y[k], BATCH, &r->l[k][s]) == 0,
                   "%s: step %d: %s", backend_name(gpu_be[k]), s + 1, err_msg());
        }
        if (s == 0 || s == STEPS - 1)
            r->allocs[s != 0] = backend_allocations(gpu_be[1]);
    }
    free(hx), free(hy);
    for (int k = 0; k < 2; k++)
        backend_set_precision(gpu_be[k], BACKEND_FP32);
    return 0;
}

/* The 10 numbers of a losses record: g_adv f_adv cyc id gen dx dy, then the norms. */
static void losses_array(const struct cyclegan_losses *l, float v[10])
{
    const float a[10] = {l->g_adv, l->f_adv, l->cyc,      l->id,      l->gen,
                         l->dx,    l->dy,    l->norm_gen, l->norm_dx, l->norm_dy};
    memcpy(v, a, sizeof a);
}

static int check_losses(const char *what, const struct cyclegan_losses *got,
                        const struct cyclegan_losses *want, double rtol, int with_norms)
{
    float g[10], w[10];
    losses_array(got, g);
    losses_array(want, w);
    char label[96];
    snprintf(label, sizeof label, "%s losses (rel %.0e)", what, rtol);
    int bad = check_tensor(label, g, w, 7, 1e-7, rtol);
    if (with_norms) {
        snprintf(label, sizeof label, "%s grad norms G+F DX DY (rel %.0e)", what, rtol);
        bad |= check_tensor(label, g + 7, w + 7, 3, 1e-7, rtol);
    }
    for (int i = 0; i < 7; i++)
        if (!isfinite(g[i]) || !isfinite(w[i])) {
            printf("# %s: loss %d not finite (device %g, cpu %g)\n", what, i, g[i], w[i]);
            bad = 1;
        }
    return bad;
}

/* One net's parameters, BN statistics, counters and Adam step against the CPU's. */
static int compare_net(struct run *r, int k)
{
    struct net *nr = net_k(r->cg[0], k), *nd = net_k(r->cg[1], k);
    double lr = opt_k(r->cg[0], k)->initial_lr;
    double p_max = 0, b_max = 0;
    long n_params = 0, n_bulk = 0, n_bad = 0;
    int bad = 0;
    EXPECT(net_tensor_count(nr) == net_tensor_count(nd), "tensor counts");
    for (int i = 0; i < net_tensor_count(nr); i++) {
        const struct net_tensor *tr = net_tensor_at(nr, i), *td = net_tensor_at(nd, i);
        if (tr->kind == NET_COUNTER) {
            int64_t a = *(const int64_t *)tr->data, b = *(const int64_t *)td->data;
            if (a != b) {
                printf("# %s.%s: device %lld, cpu %lld NOT OK\n", TAG[k], tr->name, (long long)b,
                       (long long)a);
                bad = 1;
            }
            continue;
        }
        long n = (long)tr->numel;
        float *want = gpu_fetch(gpu_be[0], tr->data, n), *got = gpu_fetch(gpu_be[1], td->data, n);
        if (tr->kind == NET_BUFFER) {
            long before = n_bad;
            for (long j = 0; j < n; j++) {
                double d = fabs((double)got[j] - want[j]);
                b_max = d > b_max || isnan(d) ? (isnan(d) ? INFINITY : d) : b_max;
                n_bad += !(d <= BUF_ATOL + BUF_RTOL * fabs(want[j]));
            }
            if (n_bad > before) {
                char label[128];
                snprintf(label, sizeof label, "%s.%s", TAG[k], tr->name);
                check_tensor(label, got, want, n, BUF_ATOL, BUF_RTOL);
            }
        } else {
            long before = n_bad;
            for (long j = 0; j < n; j++) {
                double d = fabs((double)got[j] - want[j]);
                p_max = d > p_max || isnan(d) ? (isnan(d) ? INFINITY : d) : p_max;
                n_bad += !(d <= P_MAX * lr + 1e-5 * fabs(want[j]));
                n_bulk += !(d <= P_BULK * lr + 1e-5 * fabs(want[j]));
            }
            n_params += n;
            if (n_bad > before) {
                char label[128];
                snprintf(label, sizeof label, "%s.%s", TAG[k], tr->name);
                check_tensor(label, got, want, n, P_MAX * lr, 1e-5);
            }
        }
        free(want), free(got);
    }
    long sr = opt_k(r->cg[0], k)->step, sd = opt_k(r->cg[1], k)->step;
    int bulk_bad = n_bulk > P_BULK_FRAC * n_params;
    bad |= n_bad > 0 || bulk_bad || sr != sd;
    printf("# %-2s params max|d| %.2e = %.3f lr, %ld/%ld beyond %.2f lr | BN stats max|d| %.2e | adam step "
           "%ld/%ld%s\n",
           TAG[k], p_max, p_max / lr, n_bulk, n_params, P_BULK, b_max, sd, sr, bad ? " NOT OK" : "");
    return bad;
}

/* Only the first step (first use of each shape) may allocate on the device. */
static int check_allocs(const struct run *r, const char *what)
{
    long n = r->allocs[1] - r->allocs[0];
    printf("# %s: %ld device allocations after the first step%s\n", what, n, n ? " NOT OK" : "");
    return n != 0;
}

static int test_steps_fp32(void)
{
    struct run r;
    int bad = run_steps(&r, BACKEND_FP32);
    if (!bad)
        bad |= check_allocs(&r, "fp32");
    if (!bad) {
        for (int s = 0; s < STEPS; s++) {
            char what[32];
            snprintf(what, sizeof what, "fp32 step %d", s + 1);
            bad |= check_losses(what, &r.l[1][s], &r.l[0][s], 1e-3, 1);
        }
        for (int k = 0; k < 4; k++)
            bad |= compare_net(&r, k);
        /* evaluation mode on the last batch: the running statistics at work */
        struct cyclegan_losses e[2];
        if (cyclegan_eval(r.cg[0], r.x[0], r.y[0], BATCH, &e[0]) != 0 ||
            cyclegan_eval(r.cg[1], r.x[1], r.y[1], BATCH, &e[1]) != 0) {
            printf("# eval: %s\n", err_msg());
            bad = 1;
        } else {
            bad |= check_losses("fp32 eval", &e[1], &e[0], 1e-3, 0);
        }
    }
    run_free(&r);
    return bad;
}

static int steps_16(enum backend_precision p)
{
    struct run r;
    int bad = run_steps(&r, p);
    if (!bad)
        bad |= check_allocs(&r, backend_precision_name(p));
    if (!bad) {
        for (int s = 0; s < STEPS; s++) {
            char what[32];
            snprintf(what, sizeof what, "%s step %d", backend_precision_name(p), s + 1);
            bad |= check_losses(what, &r.l[1][s], &r.l[0][s], 5e-2, 0);
            printf("# %s: loss scale device %g cpu %g, skipped updates (bits G+F,DX,DY) device %d cpu %d\n",
                   what, r.l[1][s].loss_scale, r.l[0][s].loss_scale, r.l[1][s].skipped, r.l[0][s].skipped);
        }
    }
    run_free(&r);
    return bad;
}

static int test_steps_bf16(void)
{
    return steps_16(BACKEND_BF16);
}

static int test_steps_fp16(void)
{
    return steps_16(BACKEND_FP16);
}

GPU_MAIN(T(test_steps_fp32), T(test_steps_bf16), T(test_steps_fp16))
