/*
 * test_gpu_ops: every op of the backend vtable (lib/backend/backend-impl.h) on the
 * device under test against the CPU backend, through the public APIs
 * (layers.h, layers-pool.h, optim.h) on the same random data (fixed seed),
 * in the CycleGAN's and the FID network's own shapes, small enough for the
 * CPU side to run in seconds.  Each tensor prints "# label [tol x scale]
 * max|d|=..." so a GPU run's log records the differences measured.
 *
 * Tolerances: |device - cpu| <= tol * max(1, max|cpu|) over the tensor.
 *   convolutions (sums of up to ~2e3 products in another order) ..... 1e-4
 *   norms, reductions, losses (float sums in another order) .......... 2e-5
 *   elementwise (activations, padding, axpy, pooling, resize) ........ 1e-5
 *   padding forward, ReLU, max pooling, scale (copies / one rounding)  exact
 *   Adam (backend-impl.h promises torch's float ops bit for bit) ..... exact
 *   gradient clipping: norm and clipped gradients 1e-6; sumsq (double) 1e-10
 * 16-bit convolutions (backend.h: both backends round operands and results
 * to the 16-bit type and sum in float, so they differ by the order of the
 * float sums, i.e. by about one 16-bit ulp of a result): tol * max|cpu| with
 * bf16 2e-2 (ulp 2^-8 relative) and fp16 2e-3 (ulp 2^-11 relative).
 */
#include "gpu-check.h"

#include "backend/backend-impl.h" /* the sumsq entry, which optim.h only uses inside clip_grad_norm */
#include "backend/layers-pool.h"
#include "backend/layers.h"
#include "nn/optim.h"
#include "base/rng.h"

#define TOL_CONV 1e-4
#define TOL_SUM  2e-5
#define TOL_ELEM 1e-5
#define TOL_BF16 2e-2
#define TOL_FP16 2e-3

/* What the floats between output slices hold (conv_ex, pool2d): small, so it
 * does not widen the tolerance, and no value an op computes here. */
#define SENTINEL 0.123456f

static rng R;

// ----------------------------------------------------------------------------
// A tensor on both backends, and loops that run one op on each

struct pair {
    float *t[2]; /* [0] reference, [1] device */
    long n;
};

/* Pairs of the running test, freed by done(). */
static struct pair arena[64];
static int narena;

static struct pair *pair_from(const float *host, long n)
{
    if (narena == (int)(sizeof arena / sizeof arena[0]))
        gpu_bail("test arena full");
    struct pair *p = &arena[narena++];
    p->n = n;
    for (int k = 0; k < 2; k++)
        p->t[k] = gpu_put(gpu_be[k], host, n);
    return p;
}

/* uniform in [lo, hi) on both */
static struct pair *rnd(long n, float lo, float hi)
{
    float *h = malloc((size_t)n * sizeof(float));
    for (long i = 0; i < n; i++)
        h[i] = rng_uniform_f32(&R, lo, hi);
    struct pair *p = pair_from(h, n);
    free(h);
    return p;
}

static struct pair *filled(long n, float v)
{
    float *h = malloc((size_t)n * sizeof(float));
    for (long i = 0; i < n; i++)
        h[i] = v;
    struct pair *p = pair_from(h, n);
    free(h);
    return p;
}

/* A new pair holding a copy of p's current contents on each side. */
static struct pair *dup(const struct pair *p)
{
    struct pair *q = pair_from(NULL, p->n);
    for (int k = 0; k < 2; k++)
        if (backend_copy(gpu_be[k], q->t[k], p->t[k], (size_t)p->n * sizeof(float)) != 0)
            gpu_bail("%s: copy: %s", backend_name(gpu_be[k]), err_msg());
    return q;
}

/* End of a test: free its pairs, put both backends back to fp32. */
static int done(int bad)
{
    for (int i = 0; i < narena; i++)
        for (int k = 0; k < 2; k++)
            backend_dealloc(gpu_be[k], arena[i].t[k]);
    narena = 0;
    backend_set_precision(gpu_be[0], BACKEND_FP32);
    backend_set_precision(gpu_be[1], BACKEND_FP32);
    return bad;
}

/* Run the statement once per backend: BE is the backend, D(p) p's pointer there. */
#define ON_BOTH  for (int k_ = 0; k_ < 2; k_++)
#define BE       gpu_be[k_]
#define D(p)     ((p) ? (p)->t[k_] : NULL)
#define OK(call) EXPECT((call) == 0, "%s: %s", backend_name(BE), err_msg())

/* Compare the device's copy of p with the reference's: tol * max(scale_min, max|ref|);
 * the label is printf-formatted. */
static int vcmp(const struct pair *p, double tol, double scale_min, const char *fmt, va_list ap)
{
    char label[128];
    vsnprintf(label, sizeof label, fmt, ap);
    float *want = gpu_fetch(gpu_be[0], p->t[0], p->n), *got = gpu_fetch(gpu_be[1], p->t[1], p->n);
    int bad = gpu_cmp_host(label, got, want, p->n, tol, scale_min);
    free(want), free(got);
    return bad;
}

static int cmp_at(const struct pair *p, double tol, double scale_min, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int cmp_at(const struct pair *p, double tol, double scale_min, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int bad = vcmp(p, tol, scale_min, fmt, ap);
    va_end(ap);
    return bad;
}

/* cmp_at with scale_min 1: tol * max(1, max|ref|) */
static int cmp(const struct pair *p, double tol, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int cmp(const struct pair *p, double tol, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int bad = vcmp(p, tol, 1.0, fmt, ap);
    va_end(ap);
    return bad;
}

/* Every test starts from its own seed, so one selected alone sees the same data. */
static void begin(uint64_t seed)
{
    rng_seed(&R, seed);
}

// ----------------------------------------------------------------------------
// Convolutions

struct conv_case {
    int cin, h, w, cout, k, stride, pad, out_pad; /* out_pad < 0: conv2d, else convt2d */
    const char *what;
};

/* The generator's and discriminator's layers at 32 px (n = 2). */
static const struct conv_case CONV2D[] = {
    {3, 38, 38, 16, 7, 1, 0, -1, "c7s1 (after reflpad 3)"},
    {16, 32, 32, 32, 3, 2, 1, -1, "down k3s2p1"},
    {64, 18, 18, 64, 3, 1, 0, -1, "res block k3 (after reflpad 1)"},
    {3, 32, 32, 16, 4, 2, 1, -1, "D k4s2p1"},
    {32, 8, 8, 64, 4, 1, 1, -1, "D k4s1p1"},
    {64, 7, 7, 1, 4, 1, 1, -1, "D k4s1p1 to one channel"},
};
static const struct conv_case CONVT2D[] = {
    {64, 8, 8, 32, 3, 2, 1, 1, "up k3s2p1 out_pad 1"},
    {32, 16, 16, 16, 3, 2, 1, 1, "up k3s2p1 out_pad 1"},
};

/* Forward with bias; backward with din (over garbage), dw and db accumulated
 * onto random values; a second backward with din = NULL and db = NULL
 * accumulates dw once more.  tol/scale_min as cmp_at. */
static int conv_case_run(const struct conv_case *c, double tol, double scale_min)
{
    const int n = 2, t = c->out_pad >= 0;
    struct conv_shape sh;
    int rc = t ? convt2d_shape(&sh, n, c->cin, c->h, c->w, c->cout, c->k, c->stride, c->pad, c->out_pad)
               : conv2d_shape(&sh, n, c->cin, c->h, c->w, c->cout, c->k, c->stride, c->pad);
    EXPECT(rc == 0, "%s", err_msg());
    long nin = (long)n * c->cin * c->h * c->w, nout = (long)n * c->cout * sh.hout * sh.wout,
         nw = (long)c->cin * c->cout * c->k * c->k;
    float ws = 1.0f / sqrtf((float)(c->cin * c->k * c->k));
    struct pair *x = rnd(nin, -1, 1), *w = rnd(nw, -ws, ws), *b = rnd(c->cout, -0.5f, 0.5f);
    struct pair *out = filled(nout, 7.0f), *dout = rnd(nout, -1, 1), *din = filled(nin, -3.0f);
    struct pair *dw = rnd(nw, -1, 1), *db = rnd(c->cout, -1, 1);
    ON_BOTH
    {
        if (t) {
            OK(convt2d_forward(BE, D(out), D(x), D(w), D(b), &sh));
            OK(convt2d_backward(BE, D(din), D(dw), D(db), D(dout), D(x), D(w), &sh));
            OK(convt2d_backward(BE, NULL, D(dw), NULL, D(dout), D(x), D(w), &sh));
        } else {
            OK(conv2d_forward(BE, D(out), D(x), D(w), D(b), &sh));
            OK(conv2d_backward(BE, D(din), D(dw), D(db), D(dout), D(x), D(w), &sh));
            OK(conv2d_backward(BE, NULL, D(dw), NULL, D(dout), D(x), D(w), &sh));
        }
    }
    const char *op = t ? "convt2d" : "conv2d", *p = backend_precision_name(backend_get_precision(gpu_be[1]));
    char pre[96];
    snprintf(pre, sizeof pre, "%s %s %dx%dx%d>%d k%d", op, p, c->cin, c->h, c->w, c->cout, c->k);
    printf("# %s: %s\n", pre, c->what);
    int bad = cmp_at(out, tol, scale_min, "%s out", pre);
    bad |= cmp_at(din, tol, scale_min, "%s din", pre);
    bad |= cmp_at(dw, tol, scale_min, "%s dw (+= twice)", pre);
    bad |= cmp_at(db, tol, scale_min, "%s db (+=)", pre);
    return done(bad);
}

static int test_conv2d(void)
{
    begin(1);
    int bad = 0;
    for (size_t i = 0; i < sizeof CONV2D / sizeof *CONV2D; i++)
        bad |= conv_case_run(&CONV2D[i], TOL_CONV, 1.0);
    return bad;
}

static int test_convt2d(void)
{
    begin(2);
    int bad = 0;
    for (size_t i = 0; i < sizeof CONVT2D / sizeof *CONVT2D; i++)
        bad |= conv_case_run(&CONVT2D[i], TOL_CONV, 1.0);
    return bad;
}

/* The same convolutions with 16-bit arithmetic on both backends. */
static int conv_precision(enum backend_precision p, double tol)
{
    int bad = 0;
    for (size_t i = 0; i < sizeof CONV2D / sizeof *CONV2D + sizeof CONVT2D / sizeof *CONVT2D; i++) {
        const struct conv_case *c =
            i < sizeof CONV2D / sizeof *CONV2D ? &CONV2D[i] : &CONVT2D[i - sizeof CONV2D / sizeof *CONV2D];
        EXPECT(backend_set_precision(gpu_be[0], p) == 0 && backend_set_precision(gpu_be[1], p) == 0, "%s",
               err_msg());
        bad |= conv_case_run(c, tol, 1e-30);
    }
    return bad;
}

static int test_conv_bf16(void)
{
    begin(3);
    return conv_precision(BACKEND_BF16, TOL_BF16);
}

static int test_conv_fp16(void)
{
    begin(4);
    return conv_precision(BACKEND_FP16, TOL_FP16);
}

// ----------------------------------------------------------------------------
// Padding, norms, activations

static int test_reflpad(void)
{
    begin(5);
    const int planes = 2 * 16, h = 32, w = 30;
    int bad = 0;
    for (int pad = 1; pad <= 3; pad += 2) {
        long nin = (long)planes * h * w, nout = (long)planes * (h + 2 * pad) * (w + 2 * pad);
        struct pair *x = rnd(nin, -1, 1), *out = filled(nout, 9), *dout = rnd(nout, -1, 1),
                    *din = filled(nin, 9);
        ON_BOTH
        {
            OK(reflpad_forward(BE, D(out), D(x), planes, h, w, pad));
            OK(reflpad_backward(BE, D(din), D(dout), planes, h, w, pad));
        }
        bad |= cmp(out, 0, "reflpad %d out", pad) | cmp(din, TOL_ELEM, "reflpad %d din", pad);
        done(0);
    }
    return bad;
}

static int bn_case(int training)
{
    const int n = 2, c = 32, hw = 32 * 32;
    long nel = (long)n * c * hw;
    struct pair *x = rnd(nel, -1.5f, 2.5f), *gamma = rnd(c, 0.5f, 1.5f), *beta = rnd(c, -0.5f, 0.5f);
    struct pair *rm = rnd(c, -0.2f, 0.2f), *rv = rnd(c, 0.5f, 2.0f), *mean = filled(c, 5),
                *rstd = filled(c, 5);
    struct pair *out = filled(nel, 5), *dout = rnd(nel, -1, 1), *din = filled(nel, 5);
    struct pair *dg = rnd(c, -1, 1), *dbt = rnd(c, -1, 1);
    ON_BOTH
    {
        OK(batchnorm_forward(BE, D(out), D(mean), D(rstd), D(x), D(gamma), D(beta), D(rm), D(rv), n, c, hw,
                             training, BN_MOMENTUM, BN_EPS));
        OK(batchnorm_backward(BE, D(din), D(dg), D(dbt), D(dout), D(x), D(mean), D(rstd), D(gamma), n, c, hw,
                              training));
    }
    const char *m = training ? "bn train" : "bn eval";
    int bad = cmp(out, TOL_SUM, "%s out", m) | cmp(mean, TOL_SUM, "%s mean", m) |
              cmp(rstd, TOL_SUM, "%s rstd", m) | cmp(rm, TOL_SUM, "%s running_mean", m) |
              cmp(rv, TOL_SUM, "%s running_var", m) | cmp(din, TOL_SUM, "%s din", m) |
              cmp(dg, TOL_SUM, "%s dgamma (+=)", m) | cmp(dbt, TOL_SUM, "%s dbeta (+=)", m);
    return done(bad);
}

static int test_batchnorm(void)
{
    begin(6);
    return bn_case(1) | bn_case(0);
}

static int test_instnorm(void)
{
    begin(7);
    const int planes = 2 * 64, hw = 16 * 16;
    long nel = (long)planes * hw;
    struct pair *x = rnd(nel, -2, 3), *out = filled(nel, 5), *mean = filled(planes, 5),
                *rstd = filled(planes, 5), *dout = rnd(nel, -1, 1), *din = filled(nel, 5);
    ON_BOTH
    {
        OK(instnorm_forward(BE, D(out), D(mean), D(rstd), D(x), planes, hw, BN_EPS));
        OK(instnorm_backward(BE, D(din), D(dout), D(x), D(mean), D(rstd), planes, hw));
    }
    int bad = cmp(out, TOL_SUM, "instnorm out") | cmp(mean, TOL_SUM, "instnorm mean") |
              cmp(rstd, TOL_SUM, "instnorm rstd") | cmp(din, TOL_SUM, "instnorm din");
    return done(bad);
}

static int test_act(void)
{
    begin(8);
    static const char *const names[] = {"relu", "lrelu", "tanh"};
    const long n = 65536 + 3; /* not a multiple of a vector width */
    int bad = 0;
    for (int kind = ACT_RELU; kind <= ACT_TANH; kind++) {
        struct pair *x = rnd(n, -3, 3), *out = filled(n, 5), *dout = rnd(n, -1, 1), *din = filled(n, 5);
        struct pair *y = dup(x), *g = dup(dout);
        ON_BOTH
        {
            OK(act_forward(BE, D(out), D(x), n, (enum act_kind)kind));
            OK(act_backward(BE, D(din), D(dout), D(out), n, (enum act_kind)kind));
            OK(act_forward(BE, D(y), D(y), n, (enum act_kind)kind)); /* in place, as the models run them */
            OK(act_backward(BE, D(g), D(g), D(y), n, (enum act_kind)kind));
        }
        double tol = kind == ACT_RELU ? 0 : TOL_ELEM;
        bad |= cmp(out, tol, "%s out", names[kind]) | cmp(din, tol, "%s din", names[kind]) |
               cmp(y, tol, "%s out in place", names[kind]) | cmp(g, tol, "%s din in place", names[kind]);
        done(0);
    }
    return bad;
}

// ----------------------------------------------------------------------------
// Reductions, losses, elementwise

static int test_mean(void)
{
    begin(9);
    const int n = 4;
    const long m = 30 * 30; /* the PatchGAN map at 256 px */
    struct pair *x = rnd(n * m, -1, 1.5f), *out = filled(n, 5), *dout = rnd(n, -1, 1),
                *din = filled(n * m, 5);
    ON_BOTH
    {
        OK(mean_forward(BE, D(out), D(x), n, m));
        OK(mean_backward(BE, D(din), D(dout), n, m));
    }
    return done(cmp(out, TOL_SUM, "mean out") | cmp(din, TOL_ELEM, "mean din"));
}

static int test_loss(void)
{
    begin(10);
    static const char *const names[] = {"mse", "l1"};
    const long n = 2 * 3 * 32 * 32;
    int bad = 0;
    for (int kind = LOSS_MSE; kind <= LOSS_L1; kind++) {
        for (int with_target = 0; with_target < 2; with_target++) {
            float *hx = malloc(n * sizeof(float)), *ht = malloc(n * sizeof(float));
            const float tv = kind == LOSS_MSE ? 1.0f : 0.0f;
            for (long i = 0; i < n; i++) {
                ht[i] = rng_uniform_f32(&R, -1, 1);
                hx[i] = rng_uniform_f32(&R, -1, 1);
                if (i % 7 == 0) /* exact ties: L1's sign(0) = 0 */
                    hx[i] = with_target ? ht[i] : tv;
            }
            struct pair *x = pair_from(hx, n), *t = with_target ? pair_from(ht, n) : NULL;
            struct pair *out = filled(1, 5), *dx = rnd(n, -1, 1);
            free(hx), free(ht);
            ON_BOTH
            {
                OK(loss_forward(BE, D(out), D(x), D(t), tv, n, (enum loss_kind)kind));
                OK(loss_backward(BE, D(dx), D(x), D(t), tv, 0.75f, n, (enum loss_kind)kind));
            }
            const char *w = with_target ? "target" : "constant";
            bad |= cmp(out, TOL_SUM, "%s %s out", names[kind], w) |
                   cmp(dx, TOL_ELEM, "%s %s dx (+=)", names[kind], w);
            done(0);
        }
    }
    return bad;
}

static int test_axpy_scale(void)
{
    begin(11);
    const long n = 100003;
    struct pair *y = rnd(n, -1, 1), *x = rnd(n, -2, 2), *s = rnd(n, -3, 3);
    ON_BOTH
    {
        OK(tensor_axpy(BE, D(y), 0.37f, D(x), n));
        OK(tensor_scale(BE, D(s), -1.7f, n));
    }
    return done(cmp(y, TOL_ELEM, "axpy y += 0.37 x") | cmp(s, 0, "scale x *= -1.7 (exact)"));
}

// ----------------------------------------------------------------------------
// Optimiser: Adam bit for bit, gradient clipping, sumsq

static int test_adam(void)
{
    begin(12);
    const long n = 10007 + 64 + 3;
    struct pair *p = rnd(n, -0.3f, 0.3f), *g = pair_from(NULL, n);
    struct adam *a[2];
    ON_BOTH EXPECT((a[k_] = adam_new(BE, (size_t)n, 2e-4, 0.5, 0.999, 1e-8, 1e-4)), "%s: %s",
                   backend_name(BE), err_msg());
    float *hg = malloc(n * sizeof(float));
    int bad = 0;
    for (int step = 1; step <= 3; step++) {
        /* gradients over many magnitudes, some near eps, some exactly zero */
        for (long i = 0; i < n; i++)
            hg[i] = i % 11 == 0 ? 0.0f : rng_uniform_f32(&R, -1, 1) * powf(10.0f, -(float)(i % 9));
        for (int k = 0; k < 2; k++)
            if (backend_upload(gpu_be[k], g->t[k], hg, n * sizeof(float)) != 0)
                gpu_bail("upload: %s", err_msg());
        ON_BOTH
        {
            a[k_]->lr = step == 3 ? 1.5e-4 : 2e-4;
            OK(adam_step(a[k_], D(p), D(g)));
        }
        struct pair m = {{a[0]->exp_avg, a[1]->exp_avg}, n}, v = {{a[0]->exp_avg_sq, a[1]->exp_avg_sq}, n};
        bad |= cmp(p, 0, "adam step %d param (exact)", step) |
               cmp(&m, 0, "adam step %d exp_avg (exact)", step) |
               cmp(&v, 0, "adam step %d exp_avg_sq (exact)", step);
    }
    EXPECT(a[0]->step == 3 && a[1]->step == 3, "steps %ld %ld", a[0]->step, a[1]->step);
    free(hg);
    adam_free(a[0]), adam_free(a[1]);
    return done(bad);
}

static int test_clip_sumsq(void)
{
    begin(13);
    static const long sizes[4] = {20000, 9000, 100, 1};
    int bad = 0;
    for (int c = 0; c < 2; c++) {
        const double max_norm = c == 0 ? 1.0 : 1e9; /* clips / leaves the gradients alone */
        struct pair *s1 = rnd(29000, -0.05f, 0.05f), *s2 = rnd(101, -2, 2);
        float norm[2];
        double sq[2][4];
        ON_BOTH
        {
            OK(BE->iface->sumsq(BE, sq[k_], D(s1), sizes, 2));
            OK(BE->iface->sumsq(BE, sq[k_] + 2, D(s2), sizes + 2, 2));
            struct grad_slab gs[2] = {{D(s1), sizes, 2}, {D(s2), sizes + 2, 2}};
            OK(clip_grad_norm(BE, gs, 2, max_norm, &norm[k_]));
        }
        double rel = 0;
        for (int i = 0; i < 4; i++)
            rel = fmax(rel, fabs(sq[1][i] - sq[0][i]) / fmax(sq[0][i], 1e-300));
        printf("# sumsq of 4 runs: max rel |d| = %.3g (tol 1e-10)%s\n", rel, rel <= 1e-10 ? "" : " NOT OK");
        bad |= rel > 1e-10;
        char label[64];
        snprintf(label, sizeof label, "clip %s: norm (rel 1e-6)", c ? "off" : "on");
        bad |= check_tensor(label, &norm[1], &norm[0], 1, 0, 1e-6);
        bad |= cmp(s1, c ? 0 : 1e-6, "clip %s: slab 1", c ? "off" : "on") |
               cmp(s2, c ? 0 : 1e-6, "clip %s: slab 2", c ? "off" : "on");
        /* the same through clip_grad_norm_dev: on the device the norm and the
         * coefficient stay there (clip.cu); the CPU uploads its host result */
        struct pair *t1 = rnd(29000, -0.05f, 0.05f), *t2 = rnd(101, -2, 2);
        float dnorm[2];
        ON_BOTH
        {
            float *nd = (float *)backend_alloc(BE, sizeof(float));
            struct grad_slab gs[2] = {{D(t1), sizes, 2}, {D(t2), sizes + 2, 2}};
            OK(!nd || clip_grad_norm_dev(BE, gs, 2, max_norm, nd));
            OK(backend_download(BE, &dnorm[k_], nd, sizeof(float)));
            backend_dealloc(BE, nd);
        }
        snprintf(label, sizeof label, "clip_dev %s: norm (rel 1e-6)", c ? "off" : "on");
        bad |= check_tensor(label, &dnorm[1], &dnorm[0], 1, 0, 1e-6);
        bad |= cmp(t1, c ? 0 : 1e-6, "clip_dev %s: slab 1", c ? "off" : "on") |
               cmp(t2, c ? 0 : 1e-6, "clip_dev %s: slab 2", c ? "off" : "on");
        done(0);
    }
    return bad;
}

// ----------------------------------------------------------------------------
// The FID network's inference ops

struct ex_case {
    int cin, h, w, cout, kh, kw, sh, sw, ph, pw;
    int relu, bias;
    int c_off, c_total; /* the output is channels [c_off, c_off+cout) of c_total */
};

static int test_conv_ex(void)
{
    begin(14);
    static const struct ex_case cases[] = {
        {32, 17, 17, 48, 1, 7, 1, 1, 0, 3, 1, 1, 16, 96}, /* 1x7 into a concat slice */
        {32, 17, 17, 40, 7, 1, 1, 1, 3, 0, 1, 1, 0, 64},  /* 7x1 */
        {32, 17, 17, 64, 3, 3, 2, 2, 0, 0, 1, 1, 0, 64},  /* 3x3 stride 2, dense output */
        {64, 8, 8, 32, 1, 1, 1, 1, 0, 0, 0, 0, 32, 80},   /* 1x1, no bias, no ReLU */
        {3, 37, 37, 32, 3, 3, 2, 2, 0, 0, 1, 1, 0, 32},   /* the stem's first conv */
    };
    const int n = 2;
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const struct ex_case *c = &cases[i];
        struct conv_ex_shape s;
        EXPECT(conv_ex_shape_init(&s, n, c->cin, c->h, c->w, c->cout, c->kh, c->kw, c->sh, c->sw, c->ph,
                                  c->pw) == 0,
               "%s", err_msg());
        long plane = (long)s.hout * s.wout, nw = (long)c->cout * c->cin * c->kh * c->kw;
        s.out_bstride = (long)c->c_total * plane;
        s.relu = c->relu;
        float ws = 1.0f / sqrtf((float)(c->cin * c->kh * c->kw));
        struct pair *x = rnd((long)n * c->cin * c->h * c->w, -1, 1), *w = rnd(nw, -ws, ws);
        struct pair *b = c->bias ? rnd(c->cout, -0.5f, 0.5f) : NULL;
        struct pair *out = filled(n * s.out_bstride, SENTINEL); /* the floats around the slice must stay */
        ON_BOTH
        {
            size_t bytes = conv_ex_workspace_bytes(BE, &s);
            float *wsp = bytes ? backend_alloc(BE, bytes) : NULL;
            EXPECT(!bytes || wsp, "%s", err_msg());
            OK(conv_ex_forward(BE, D(out) + (long)c->c_off * plane, D(x), D(w), D(b), &s, wsp));
            backend_dealloc(BE, wsp);
        }
        bad |= cmp(out, TOL_CONV, "conv_ex %dx%d s%d relu%d %d>%d of %d", c->kh, c->kw, c->sh, c->relu,
                   c->cin, c->cout, c->c_total);
        done(0);
    }
    return bad;
}

static int test_pool2d(void)
{
    begin(15);
    static const char *const names[] = {"max", "avg incl pad", "avg excl pad"};
    static const int geo[3][3] = {{3, 2, 0}, {3, 1, 1}, {3, 1, 1}}; /* k, stride, pad */
    const int n = 2, c = 32, h = 17, w = 17;
    int bad = 0;
    for (int kind = POOL_MAX; kind <= POOL_AVG_EXCL_PAD; kind++) {
        struct pool_shape s;
        EXPECT(pool2d_shape_init(&s, n, c, h, w, geo[kind][0], geo[kind][1], geo[kind][2],
                                 (enum pool_kind)kind) == 0,
               "%s", err_msg());
        long plane = (long)s.hout * s.wout;
        s.out_bstride = (long)(c + 16) * plane; /* a slice of a concat, offset 8 channels */
        struct pair *x = rnd((long)n * c * h * w, -2, 2), *out = filled(n * s.out_bstride, SENTINEL);
        ON_BOTH OK(pool2d_forward(BE, D(out) + 8 * plane, D(x), &s));
        bad |= cmp(out, kind == POOL_MAX ? 0 : TOL_ELEM, "pool2d %s k%d s%d p%d", names[kind], s.k, s.stride,
                   s.pad);
        done(0);
    }
    return bad;
}

static int test_resize(void)
{
    begin(16);
    struct {
        int h, w, hout, wout;
        enum resize_mode mode;
        float lo, hi, mul, add;
        const char *what;
    } cases[] = {
        {17, 23, 32, 40, RESIZE_HALF_PIXEL, 0, 1, 2.0f, -1.0f, "half-pixel up, 2x-1"},
        {64, 48, 30, 29, RESIZE_HALF_PIXEL, -1, 1, 1.0f, 0.0f, "half-pixel down"},
        {20, 20, 35, 35, RESIZE_TF1, 0, 255, 1.0f / 128, -1.0f, "TF1 up, (x-128)/128"},
        {40, 36, 29, 31, RESIZE_TF1, 0, 255, 1.0f, 0.0f, "TF1 down"},
    };
    const int planes = 2 * 3;
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct pair *x = rnd((long)planes * cases[i].h * cases[i].w, cases[i].lo, cases[i].hi);
        struct pair *out = filled((long)planes * cases[i].hout * cases[i].wout, 5);
        ON_BOTH OK(resize_bilinear_forward(BE, D(out), D(x), planes, cases[i].h, cases[i].w, cases[i].hout,
                                           cases[i].wout, cases[i].mode, cases[i].mul, cases[i].add));
        bad |= cmp(out, TOL_ELEM, "resize %s %dx%d>%dx%d", cases[i].what, cases[i].h, cases[i].w,
                   cases[i].hout, cases[i].wout);
        done(0);
    }
    return bad;
}

GPU_MAIN(T(test_conv2d), T(test_convt2d), T(test_conv_bf16), T(test_conv_fp16), T(test_reflpad),
         T(test_batchnorm), T(test_instnorm), T(test_act), T(test_mean), T(test_loss), T(test_axpy_scale),
         T(test_adam), T(test_clip_sumsq), T(test_conv_ex), T(test_pool2d), T(test_resize))
