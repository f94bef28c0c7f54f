/*
 * test_train_step: the optimiser and the whole CycleGAN training step
 * against PyTorch 1.13 (tests/py/ref_train_step.py), plus save/load/resume.
 *
 *   - Adam alone: bit for bit (atol 0): same float32 operations, same fusing.
 *   - clip_grad_norm_ alone: norm and clipped gradients rtol 1e-6 (torch
 *     sums squares in float with its own vector order, we in double).
 *   - initialisation of G, F, DX, DY from one seed: bit for bit.
 *   - three training steps (ngf 8, 2 blocks, ndf 8, batch 2, 32x32) on three
 *     batches: losses, every parameter, BN running statistics,
 *     num_batches_tracked (exact), Adam moments and steps (exact), after
 *     each step.  Tolerances, and why, at TOL_* below.
 *   - evaluation losses (eval mode) after the three steps.
 *   - resume: save after 2 steps, load into a differently seeded model, one
 *     more step: bit-identical to not stopping (no torch needed).
 */
#include "check.h"
#include "fixture.h"

#include <stdarg.h>
#include <stdint.h>
#include <unistd.h>

#include "backend/backend.h"
#include "nn/cyclegan.h"
#include "base/err.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "base/rng.h"

static struct fixture *fx;
static int fx_skip, fx_tried;
static backend_t be;

static void fixtures_release(void)
{
    fixture_free(fx);
    backend_free(be);
}

static int need_backend(void)
{
    if (!be)
        be = backend_cpu_init();
    return be ? 0 : 1;
}

static int need_fixture(void)
{
    if (!fx_tried) {
        fx_tried = 1;
        fx = fixture_from_python("ref_train_step.py", &fx_skip);
    }
    if (need_backend())
        return 1;
    if (fx_skip)
        return FX_SKIP;
    return fx ? 0 : 1;
}

static const float *fget(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const float *fget(const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const struct fx_tensor *t = fixture_get(fx, name);
    return t ? t->data : NULL;
}

// ----------------------------------------------------------------------------
// schedule (no torch)

static int test_schedule(void)
{
    /* N = 10: epochs 0-4 at 1, then (10-k)/5 */
    EXPECT(lr_schedule_factor(0, 10) == 1.0 && lr_schedule_factor(4, 10) == 1.0, "first half");
    EXPECT(lr_schedule_factor(5, 10) == 1.0, "k = N/2: (10-5)/5");
    EXPECT(lr_schedule_factor(6, 10) == 4.0 / 5.0, "k = 6: %g", lr_schedule_factor(6, 10));
    EXPECT(lr_schedule_factor(10, 10) == 0.0 && lr_schedule_factor(12, 10) == 0.0, "clamped");
    /* N = 5: N//2 = 2, denominator 3 */
    EXPECT(lr_schedule_factor(1, 5) == 1.0 && lr_schedule_factor(3, 5) == 2.0 / 3.0, "odd N");
    EXPECT(lr_schedule_factor(0, 1) == 1.0, "N = 1");
    return 0;
}

// ----------------------------------------------------------------------------
// Adam alone: three tensors in one slab, three steps, lr changed at step 3

static int test_adam(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    long sizes[3] = {10007, 64, 3}, n = 10074, off[3] = {0, 10007, 10071};
    const double lrs[3] = {2e-4, 2e-4, 1.5e-4};
    float *p = backend_alloc(be, n * sizeof(float)), *g = backend_alloc(be, n * sizeof(float));
    struct adam *a = adam_new(be, (size_t)n, 2e-4, 0.5, 0.999, 1e-8, 1e-4);
    EXPECT(p && g && a, "%s", err_msg());
    for (int i = 0; i < 3; i++)
        memcpy(p + off[i], fget("adam.p0.%d", i), sizes[i] * sizeof(float));
    int bad = 0;
    for (int s = 1; s <= 3; s++) {
        for (int i = 0; i < 3; i++)
            memcpy(g + off[i], fget("adam.g%d.%d", s, i), sizes[i] * sizeof(float));
        a->lr = lrs[s - 1];
        EXPECT(adam_step(a, p, g) == 0, "%s", err_msg());
        for (int i = 0; i < 3; i++) {
            char label[64];
            snprintf(label, sizeof label, "adam step %d param %d", s, i);
            bad |= check_tensor(label, p + off[i], fget("adam.p%d.%d", s, i), sizes[i], 0, 0);
            snprintf(label, sizeof label, "adam step %d exp_avg %d", s, i);
            bad |= check_tensor(label, a->exp_avg + off[i], fget("adam.m%d.%d", s, i), sizes[i], 0, 0);
            snprintf(label, sizeof label, "adam step %d exp_avg_sq %d", s, i);
            bad |= check_tensor(label, a->exp_avg_sq + off[i], fget("adam.v%d.%d", s, i), sizes[i], 0, 0);
        }
    }
    EXPECT(a->step == 3, "step %ld", a->step);
    adam_free(a);
    backend_dealloc(be, p), backend_dealloc(be, g);
    return bad;
}

// ----------------------------------------------------------------------------
// clip_grad_norm_ alone: the four tensors split over two slabs (as G and F)

static int test_clip(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    static const long sizes[4] = {20000, 9000, 100, 1};
    static const double max_norm[3] = {1.0, 1.0, 0.5};
    float *s1 = backend_alloc(be, 29000 * sizeof(float)), *s2 = backend_alloc(be, 101 * sizeof(float));
    EXPECT(s1 && s2, "alloc");
    float *dst[4] = {s1, s1 + 20000, s2, s2 + 100};
    int bad = 0;
    for (int c = 0; c < 3; c++) {
        for (int i = 0; i < 4; i++)
            memcpy(dst[i], fget("clip%d.g.%d", c, i), sizes[i] * sizeof(float));
        struct grad_slab gs[2] = {{s1, sizes, 2}, {s2, sizes + 2, 2}};
        float norm = -1;
        EXPECT(clip_grad_norm(be, gs, 2, max_norm[c], &norm) == 0, "%s", err_msg());
        char label[64];
        snprintf(label, sizeof label, "clip case %d norm", c);
        bad |= check_tensor(label, &norm, fget("clip%d.norm", c), 1, 0, 1e-6);
        for (int i = 0; i < 4; i++) {
            snprintf(label, sizeof label, "clip case %d grad %d", c, i);
            bad |= check_tensor(label, dst[i], fget("clip%d.out.%d", c, i), sizes[i], 0, 1e-6);
        }
    }
    backend_dealloc(be, s1), backend_dealloc(be, s2);
    return bad;
}

// ----------------------------------------------------------------------------
// the training step

static struct cyclegan_config small_config(uint64_t seed)
{
    struct cyclegan_config cfg;
    cyclegan_config_default(&cfg);
    cfg.gen = (struct gen_config){8, 2};
    cfg.disc = (struct disc_config){8};
    cfg.batch = 2, cfg.size = 32, cfg.seed = seed;
    return cfg;
}

static struct net *net_k(struct cyclegan *cg, int k)
{
    return k == 0 ? cg->G : k == 1 ? cg->F : k == 2 ? cg->DX : cg->DY;
}
static struct adam *opt_k(struct cyclegan *cg, int k)
{
    return k == 0 ? cg->opt_G : k == 1 ? cg->opt_F : k == 2 ? cg->opt_DX : cg->opt_DY;
}
static const char *const TAG[4] = {"G", "F", "DX", "DY"};

static int test_init(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    struct cyclegan_config cfg = small_config(1234);
    struct cyclegan *cg = cyclegan_new(be, &cfg);
    EXPECT(cg, "%s", err_msg());
    int bad = 0;
    for (int k = 0; k < 4; k++) {
        struct net *net = net_k(cg, k);
        for (int i = 0; i < net_tensor_count(net); i++) {
            const struct net_tensor *t = net_tensor_at(net, i);
            if (t->kind == NET_COUNTER)
                continue;
            const float *want = fget("init.%s.%s", TAG[k], t->name);
            if (!want || memcmp(t->data, want, t->numel * sizeof(float))) {
                printf("# init %s.%s differs\n", TAG[k], t->name);
                bad = 1;
            }
        }
    }
    printf("# init of G, F, DX, DY from seed 1234: %s\n", bad ? "NOT bit-exact" : "bit-exact");
    cyclegan_free(cg);
    return bad;
}

/*
 * Tolerances of the step comparison (fp32 throughout).
 *
 * Gradients differ from torch's at ~1e-7 absolute (other GEMM blocking and
 * summation orders, BN backwards that subtract nearly equal means; see
 * test_models), i.e. ~1e-6 of the largest clipped gradient; the moments
 * inherit that (m = 0.5 g + ..., v = 0.001 g^2 + ...).
 *
 * Parameters: Adam's update is lr * m/(sqrt(v) + eps), about lr*sign(g) on
 * the first steps, so it does not shrink with the gradient.  Where |g| is
 * near eps (1e-8) or where m nearly cancels between steps, a gradient
 * error of 1e-7 moves the update by a visible fraction of lr; and a conv
 * bias feeding a BatchNorm/InstanceNorm has an exactly-zero true gradient,
 * so both sides update it from rounding noise plus the weight decay.  So
 * the parameter check has two parts, in units of the net's lr:
 *   every element   |d| <= P_MAX  * lr + 1e-5 |want|
 *   the bulk        at most P_BULK_FRAC of a net's elements beyond
 *                   P_BULK * lr + 1e-5 |want|
 * A wrong update (sign, bias correction, weight decay, clipping, a missing
 * gradient term) moves most elements by ~lr and fails the bulk check.
 */
struct tol {
    double grad_atol, grad_rtol;       /* clipped gradients */
    double m_atol, m_rtol;             /* exp_avg */
    double v_atol, v_rtol;             /* exp_avg_sq */
    double p_max, p_bulk, p_bulk_frac; /* parameters, in units of lr (above) */
    double buf_atol, buf_rtol;         /* BN running statistics */
};

/* one step from torch's previous state */
static const struct tol TOL_STEP = {1e-6, 1e-3, 1e-6, 1e-3, 1e-10, 1e-3, 0.25, 0.01, 1e-3, 1e-5, 1e-4};
/* three steps free-running: each step's differences feed the next */
static const struct tol TOL_TRAJ = {2e-6, 1e-2, 2e-6, 1e-2, 2e-10, 1e-2, 0.5, 0.02, 3e-3, 1e-5, 1e-4};

struct worst {
    double abs, rel; /* max |d|, max |d|/|want| over |want| > 1e-6 */
    long n_bad;
};

static void track(struct worst *w, double got, double want, double atol, double rtol)
{
    double d = fabs(got - want);
    if (d > w->abs || isnan(d))
        w->abs = isnan(d) ? INFINITY : d;
    if (fabs(want) > 1e-6 && d / fabs(want) > w->rel)
        w->rel = d / fabs(want);
    if (!(d <= atol + rtol * fabs(want)))
        w->n_bad++;
}

/* Compare one net, its gradients and its Adam with "step<s>.*"; prints one
 * summary line per net and the first failures. */
static int compare_net(struct cyclegan *cg, int k, int s, const struct tol *tol)
{
    struct net *net = net_k(cg, k);
    struct adam *a = opt_k(cg, k);
    const float *base = net_params(net, NULL);
    double lr = a->initial_lr;
    struct worst wg = {0}, wm = {0}, wv = {0}, wp = {0}, wpb = {0}, wb = {0};
    long n_params = 0;
    int bad = 0;
    for (int i = 0, N = 0; i < net_tensor_count(net); i++) {
        const struct net_tensor *t = net_tensor_at(net, i);
        const float *want = fget("step%d.%s.%s", s, TAG[k], t->name);
        if (!want)
            return 1;
        const float *got = t->data;
        long n = (long)t->numel;
        if (t->kind == NET_COUNTER) {
            if (*(const int64_t *)t->data != (int64_t)want[0]) {
                printf("# step %d %s.%s = %lld, torch %g NOT OK\n", s, TAG[k], t->name,
                       (long long)*(const int64_t *)t->data, want[0]);
                bad = 1;
            }
            continue;
        }
        if (t->kind == NET_BUFFER) {
            long before = wb.n_bad;
            for (long j = 0; j < n; j++)
                track(&wb, got[j], want[j], tol->buf_atol, tol->buf_rtol);
            if (wb.n_bad > before)
                check_tensor(t->name, got, want, n, tol->buf_atol, tol->buf_rtol);
            continue;
        }
        size_t off = (size_t)(got - base);
        const float *g = fget("step%d.grad.%s.%s", s, TAG[k], t->name);
        const float *m = fget("step%d.opt_%s.%d.exp_avg", s, TAG[k], N);
        const float *v = fget("step%d.opt_%s.%d.exp_avg_sq", s, TAG[k], N);
        const float *st = fget("step%d.opt_%s.%d.step", s, TAG[k], N);
        if (!g || !m || !v || !st)
            return 1;
        if ((float)a->step != st[0]) {
            printf("# step %d opt_%s step %ld, torch %g NOT OK\n", s, TAG[k], a->step, st[0]);
            bad = 1;
        }
        struct {
            struct worst *w;
            const float *got, *want;
            double atol, rtol;
            const char *what;
        } c[4] = {
            {&wg, t->grad, g, tol->grad_atol, tol->grad_rtol, "grad"},
            {&wm, a->exp_avg + off, m, tol->m_atol, tol->m_rtol, "exp_avg"},
            {&wv, a->exp_avg_sq + off, v, tol->v_atol, tol->v_rtol, "exp_avg_sq"},
            {&wp, got, want, tol->p_max * lr, 1e-5, "param"},
        };
        for (int q = 0; q < 4; q++) {
            long before = c[q].w->n_bad;
            for (long j = 0; j < n; j++)
                track(c[q].w, c[q].got[j], c[q].want[j], c[q].atol, c[q].rtol);
            if (c[q].w->n_bad > before) {
                char label[160];
                snprintf(label, sizeof label, "step %d %s %s.%s", s, c[q].what, TAG[k], t->name);
                check_tensor(label, c[q].got, c[q].want, n, c[q].atol, c[q].rtol);
            }
        }
        for (long j = 0; j < n; j++)
            track(&wpb, got[j], want[j], tol->p_bulk * lr, 1e-5);
        n_params += n;
        N++;
    }
    int bulk_bad = wpb.n_bad > tol->p_bulk_frac * n_params;
    bad |= wg.n_bad || wm.n_bad || wv.n_bad || wp.n_bad || wb.n_bad || bulk_bad;
    printf("# step %d %-2s grad %.1e (rel %.1e) | m %.1e | v %.1e | param %.1e = %.3f lr, "
           "%ld/%ld beyond %.2f lr | BN %.1e (rel %.1e)%s\n",
           s, TAG[k], wg.abs, wg.rel, wm.abs, wv.abs, wp.abs, wp.abs / lr, wpb.n_bad, n_params, tol->p_bulk,
           wb.abs, wb.rel, bad ? " NOT OK" : "");
    return bad;
}

static int check_losses(const char *what, const struct cyclegan_losses *l, const float *want, int with_norms)
{
    /* torch order: g_adv f_adv cyc id gen dx dy [norm_gen norm_dx norm_dy] */
    float got[10] = {l->g_adv, l->f_adv, l->cyc,      l->id,      l->gen,
                     l->dx,    l->dy,    l->norm_gen, l->norm_dx, l->norm_dy};
    char label[64];
    snprintf(label, sizeof label, "%s losses", what);
    int bad = check_tensor(label, got, want, 7, 0, 1e-5);
    if (with_norms) {
        snprintf(label, sizeof label, "%s grad norms (G+F, DX, DY)", what);
        bad |= check_tensor(label, got + 7, want + 7, 3, 0, 1e-4);
    }
    return bad;
}

/* Set cg to torch's state after step s (parameters, BN statistics and
 * counters, moments, step counts), so the next step starts from the same
 * point and its comparison measures that step alone. */
static int load_torch_state(struct cyclegan *cg, int s)
{
    for (int k = 0; k < 4; k++) {
        struct net *net = net_k(cg, k);
        struct adam *a = opt_k(cg, k);
        const float *base = net_params(net, NULL);
        for (int i = 0, N = 0; i < net_tensor_count(net); i++) {
            const struct net_tensor *t = net_tensor_at(net, i);
            const float *v = fget("step%d.%s.%s", s, TAG[k], t->name);
            EXPECT(v, "fixture");
            if (t->kind == NET_COUNTER) {
                *(int64_t *)t->data = (int64_t)v[0];
                continue;
            }
            memcpy(t->data, v, t->numel * sizeof(float));
            if (t->kind != NET_PARAM)
                continue;
            size_t off = (size_t)((const float *)t->data - base);
            const float *m = fget("step%d.opt_%s.%d.exp_avg", s, TAG[k], N);
            const float *q = fget("step%d.opt_%s.%d.exp_avg_sq", s, TAG[k], N);
            const float *st = fget("step%d.opt_%s.%d.step", s, TAG[k], N);
            EXPECT(m && q && st, "fixture");
            memcpy(a->exp_avg + off, m, t->numel * sizeof(float));
            memcpy(a->exp_avg_sq + off, q, t->numel * sizeof(float));
            a->step = (long)st[0];
            N++;
        }
    }
    return 0;
}

/* Three steps from the same initialisation; with resync, each step starts
 * from torch's state after the previous one. */
static int run_steps(int resync)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    struct cyclegan_config cfg = small_config(1234);
    struct cyclegan *cg = cyclegan_new(be, &cfg);
    EXPECT(cg, "%s", err_msg());
    int bad = 0;
    for (int s = 1; s <= 3; s++) {
        struct cyclegan_losses l;
        const float *x = fget("step%d.x", s), *y = fget("step%d.y", s);
        EXPECT(x && y, "fixture");
        if (s > 1 && resync)
            EXPECT(load_torch_state(cg, s - 1) == 0, "resync");
        EXPECT(cyclegan_train_step(cg, x, y, 2, &l) == 0, "%s", err_msg());
        char what[32];
        snprintf(what, sizeof what, "step %d", s);
        bad |= check_losses(what, &l, fget("step%d.losses", s), 1);
        int step_bad = 0;
        for (int k = 0; k < 4; k++)
            step_bad |= compare_net(cg, k, s, resync ? &TOL_STEP : &TOL_TRAJ);
        const float *margin = fget("step%d.margin", s);
        printf("# step %d: smallest |activation input| in torch's step %.1e\n", s, margin ? margin[0] : -1.0);
        if (step_bad)
            printf("# HINT: if only the gradients of one channel's early layers differ, a ReLU "
                   "input within rounding of 0 took the other branch here (a kink, not a bug): "
                   "try another data seed in tests/py/ref_train_step.py\n");
        bad |= step_bad;
    }
    /* validation losses after the three steps, on batch 1 */
    struct cyclegan_losses l;
    EXPECT(cyclegan_eval(cg, fget("step1.x"), fget("step1.y"), 2, &l) == 0, "%s", err_msg());
    bad |= check_losses("eval", &l, fget("eval.losses"), 0);
    cyclegan_free(cg);
    return bad;
}

static int test_train_steps(void)
{
    return run_steps(1);
}
static int test_trajectory(void)
{
    return run_steps(0);
}

// ----------------------------------------------------------------------------
// resume (no torch): bit-identical continuation, eval leaves the state alone

static void random_batch(rng *r, float *x, long n)
{
    for (long i = 0; i < n; i++)
        x[i] = rng_uniform_f32(r, -1.0f, 1.0f);
}

/* Every tensor and Adam moment of a and b equal bit for bit. */
static int same_state(struct cyclegan *a, struct cyclegan *b, const char *what)
{
    for (int k = 0; k < 4; k++) {
        struct net *na = net_k(a, k), *nb = net_k(b, k);
        for (int i = 0; i < net_tensor_count(na); i++) {
            const struct net_tensor *ta = net_tensor_at(na, i), *tb = net_tensor_at(nb, i);
            size_t bytes = ta->numel * (ta->kind == NET_COUNTER ? 8 : 4);
            EXPECT(!memcmp(ta->data, tb->data, bytes), "%s: %s.%s differs", what, TAG[k], ta->name);
        }
        size_t np;
        net_params(na, &np);
        struct adam *oa = opt_k(a, k), *ob = opt_k(b, k);
        EXPECT(oa->step == ob->step && oa->lr == ob->lr && oa->initial_lr == ob->initial_lr,
               "%s: opt_%s step %ld/%ld lr %g/%g", what, TAG[k], oa->step, ob->step, oa->lr, ob->lr);
        EXPECT(!memcmp(oa->exp_avg, ob->exp_avg, np * 4) && !memcmp(oa->exp_avg_sq, ob->exp_avg_sq, np * 4),
               "%s: opt_%s moments differ", what, TAG[k]);
    }
    return 0;
}

static int test_resume(void)
{
    if (need_backend())
        return 1;
    struct cyclegan_config cfg = small_config(5);
    cfg.lambda_id = 0.75; /* not the default: must come back from the file */
    struct cyclegan *a = cyclegan_new(be, &cfg);
    cfg.seed = 6, cfg.lambda_id = 0.5;
    struct cyclegan *b = cyclegan_new(be, &cfg);
    EXPECT(a && b, "%s", err_msg());
    long n = 2 * 3 * 32 * 32;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    rng data;
    rng_seed(&data, 42);
    struct cyclegan_losses la, lb;
    for (int s = 0; s < 2; s++) {
        random_batch(&data, x, n), random_batch(&data, y, n);
        EXPECT(cyclegan_train_step(a, x, y, 2, &la) == 0, "%s", err_msg());
    }
    cyclegan_set_epoch(a, 3, 4); /* lr factor (4-3)/2 */
    char path[] = "/tmp/aging-resume-XXXXXX";
    int fd = mkstemp(path);
    EXPECT(fd >= 0, "mkstemp");
    close(fd);
    struct cyclegan_meta meta = {
        .epoch = 3, .step = 2, .epoch_step = 1, .sched_epoch = 3, .n_epochs = 4, .has_rng = 1, .rng = data};
    EXPECT(cyclegan_save(a, path, &meta) == 0, "%s", err_msg());

    /* the config as the trainer would read it before building */
    struct cyclegan_config fc;
    EXPECT(cyclegan_config_load(path, &fc) == 0, "%s", err_msg());
    EXPECT(fc.gen.ngf == 8 && fc.gen.n_blocks == 2 && fc.disc.ndf == 8 && fc.batch == 2 && fc.size == 32 &&
               fc.seed == 5 && fc.lambda_id == 0.75 && fc.lr_g == 2e-4,
           "config_load: ngf %d blocks %d ndf %d lambda_id %g", fc.gen.ngf, fc.gen.n_blocks, fc.disc.ndf,
           fc.lambda_id);

    struct cyclegan_meta got;
    EXPECT(cyclegan_load(b, path, &got) == 0, "%s", err_msg());
    unlink(path);
    EXPECT(got.epoch == 3 && got.step == 2 && got.epoch_step == 1 && got.sched_epoch == 3 &&
               got.n_epochs == 4 && got.has_rng && !memcmp(&got.rng, &data, sizeof data),
           "meta round trip");
    EXPECT(b->cfg.lambda_id == 0.75, "lambda_id %g", b->cfg.lambda_id);
    EXPECT(b->opt_G->lr == 2e-4 * 0.5 && b->opt_DX->initial_lr == 1e-4, "lr %g", b->opt_G->lr);
    int bad = same_state(a, b, "after load");

    /* evaluation touches nothing */
    EXPECT(cyclegan_eval(a, x, y, 2, &la) == 0 && cyclegan_eval(b, x, y, 2, &lb) == 0, "%s", err_msg());
    EXPECT(isfinite(la.gen) && !memcmp(&la, &lb, sizeof la), "eval losses differ");
    bad |= same_state(a, b, "after eval");

    /* one more step each, on the next batch from the restored generator */
    rng rb = got.rng;
    random_batch(&data, x, n), random_batch(&data, y, n);
    float *x2 = malloc(n * sizeof(float)), *y2 = malloc(n * sizeof(float));
    random_batch(&rb, x2, n), random_batch(&rb, y2, n);
    EXPECT(!memcmp(x, x2, n * 4) && !memcmp(y, y2, n * 4), "rng continuation");
    EXPECT(cyclegan_train_step(a, x, y, 2, &la) == 0, "%s", err_msg());
    EXPECT(cyclegan_train_step(b, x2, y2, 2, &lb) == 0, "%s", err_msg());
    EXPECT(!memcmp(&la, &lb, sizeof la), "losses after resume differ: %.9g vs %.9g", la.gen, lb.gen);
    bad |= same_state(a, b, "step after resume");
    printf("# resume: state, eval and the next step bit-identical%s\n", bad ? " NOT OK" : "");

    /* a smaller last batch rebuilds the activations and still steps */
    EXPECT(cyclegan_train_step(a, x, y, 1, &la) == 0 && isfinite(la.gen), "%s", err_msg());
    free(x), free(y), free(x2), free(y2);
    cyclegan_free(a), cyclegan_free(b);
    return bad;
}

/* After one warm-up step (first use of every shape), steps and evaluations
 * allocate nothing, in fp32 and with the 16-bit emulation's scratch too. */
static int test_no_allocation(void)
{
    if (need_backend())
        return 1;
    long n = 2 * 3 * 32 * 32;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    rng data;
    rng_seed(&data, 9);
    random_batch(&data, x, n), random_batch(&data, y, n);
    int bad = 0;
    for (int p = BACKEND_FP32; p <= BACKEND_FP16; p++) {
        struct cyclegan_config cfg = small_config(3);
        EXPECT(backend_set_precision(be, (enum backend_precision)p) == 0, "%s", err_msg());
        struct cyclegan *cg = cyclegan_new(be, &cfg);
        struct cyclegan_losses l;
        EXPECT(cg && cyclegan_train_step(cg, x, y, 2, &l) == 0, "%s", err_msg());
        long before = backend_allocations(be);
        for (int s = 0; s < 2; s++)
            EXPECT(cyclegan_train_step(cg, x, y, 2, &l) == 0 && cyclegan_eval(cg, x, y, 2, &l) == 0, "%s",
                   err_msg());
        long after = backend_allocations(be);
        printf("# %s: %ld allocations before the warm-up's end, %ld in 2 steps + 2 evaluations\n",
               backend_precision_name((enum backend_precision)p), before, after - before);
        bad |= after != before;
        cyclegan_free(cg);
    }
    backend_set_precision(be, BACKEND_FP32);
    free(x), free(y);
    return bad;
}

FX_MAIN(T(test_schedule), T(test_adam), T(test_clip), T(test_init), T(test_train_steps), T(test_trajectory),
        T(test_resume), T(test_no_allocation))
