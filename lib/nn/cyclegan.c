/*
 * cyclegan: the four networks, their optimisers, the training step written
 * out call by call (llm.c style: forwards keep their activations, the
 * backward runs the calls in reverse and sums the gradients of tensors used
 * twice) and evaluation.  See cyclegan.h; the training checkpoint is
 * cyclegan-ckpt.c.
 *
 * Gradient flow of the generator step (la, lc, li = the lambdas):
 *
 *   y --F[0]--> fake_x --G[1]--> rec_y      L1(rec_y, y)*lc
 *                 |----DX-----> MSE(.,1)*la
 *   x --G[0]--> fake_y --F[1]--> rec_x      L1(rec_x, x)*lc
 *                 |----DY-----> MSE(.,1)*la
 *   y --G[2]--> id_y  L1(., y)*li           x --F[2]--> id_x  L1(., x)*li
 *
 * d_fake_x collects DX's and G[1]'s input gradients, then goes back
 * through F[0]; d_fake_y likewise through G[0].
 */
#include "cyclegan.h"

#include <math.h>
#include <stdlib.h>

#include "cyclegan-impl.h"
#include "base/err.h"
#include "backend/layers.h"

enum { G_X, G_FX, G_Y }; /* G's calls: G(x)=fake_y, G(fake_x)=rec_y, G(y)=id_y */
enum { F_Y, F_FY, F_X }; /* F's calls: F(y)=fake_x, F(fake_y)=rec_x, F(x)=id_x */

/* slots of the device loss buffer */
/* the loss slots, then the three gradient norms (device floats, read back
 * with the losses in one download at the end of the step) */
enum {
    L_FADV,
    L_GADV,
    L_CYC_X,
    L_CYC_Y,
    L_ID_Y,
    L_ID_X,
    L_DX_R,
    L_DX_F,
    L_DY_R,
    L_DY_F,
    L_NORM_GEN,
    L_NORM_DX,
    L_NORM_DY,
    L_COUNT
};

struct cyclegan_work {
    int n;                              /* batch the sets below are built for */
    struct net_acts *aG[3], *aF[3];     /* per call */
    struct net_acts *aDX, *aDY;         /* one per D: its calls run forward+backward in turn */
    float *d_fake_x, *d_fake_y, *d_tmp; /* [n,3,s,s] */
    float *d_logit;                     /* [n] */
    float *loss;                        /* [L_COUNT] */
    long *sizes[4];                     /* per-parameter-tensor sizes of G, F, DX, DY */
    int counts[4];
};

void cyclegan_config_default(struct cyclegan_config *cfg)
{
    *cfg = (struct cyclegan_config){.gen = {32, 9},
                                    .disc = {32},
                                    .batch = 1,
                                    .size = 256,
                                    .lr_g = 2e-4,
                                    .lr_d = 1e-4,
                                    .beta1 = 0.5,
                                    .beta2 = 0.999,
                                    .eps = 1e-8,
                                    .weight_decay = 1e-4,
                                    .lambda_adv = 2,
                                    .lambda_cyc = 4,
                                    .lambda_id = 0.5,
                                    .clip_norm = 1.0,
                                    .seed = 0};
}

struct net *cg_net_at(struct cyclegan *cg, int i)
{
    struct net *nets[4] = {cg->G, cg->F, cg->DX, cg->DY};
    return nets[i];
}

struct adam *cg_opt_at(struct cyclegan *cg, int i)
{
    struct adam *opts[4] = {cg->opt_G, cg->opt_F, cg->opt_DX, cg->opt_DY};
    return opts[i];
}

// ----------------------------------------------------------------------------
// construction

static void free_acts_(struct cyclegan_work *w, backend_t be)
{
    for (int i = 0; i < 3; i++) {
        net_acts_free(w->aG[i]), net_acts_free(w->aF[i]);
        w->aG[i] = w->aF[i] = NULL;
    }
    net_acts_free(w->aDX), net_acts_free(w->aDY);
    w->aDX = w->aDY = NULL;
    backend_dealloc(be, w->d_fake_x), backend_dealloc(be, w->d_fake_y);
    backend_dealloc(be, w->d_tmp), backend_dealloc(be, w->d_logit);
    w->d_fake_x = w->d_fake_y = w->d_tmp = w->d_logit = NULL;
    w->n = 0;
}

/* Activation sets and gradient buffers for batches of n (rebuilt only when
 * n changes). */
static int ensure_acts_(struct cyclegan *cg, int n)
{
    struct cyclegan_work *w = cg->work;
    if (w->n == n)
        return 0;
    int s = cg->cfg.size;
    free_acts_(w, cg->be);
    size_t img = (size_t)n * 3 * s * s * sizeof(float);
    for (int i = 0; i < 3; i++) {
        if (!(w->aG[i] = net_acts_new(cg->G, n, s, s)))
            goto fail;
        if (!(w->aF[i] = net_acts_new(cg->F, n, s, s)))
            goto fail;
    }
    if (!(w->aDX = net_acts_new(cg->DX, n, s, s)) || !(w->aDY = net_acts_new(cg->DY, n, s, s)))
        goto fail;
    if (!(w->d_fake_x = backend_alloc(cg->be, img)) || !(w->d_fake_y = backend_alloc(cg->be, img)) ||
        !(w->d_tmp = backend_alloc(cg->be, img)) ||
        !(w->d_logit = backend_alloc(cg->be, (size_t)n * sizeof(float))))
        goto fail;
    w->n = n;
    return 0;
fail:
    free_acts_(w, cg->be);
    return err_wrap("cyclegan: activations for %d images of %dx%d", n, s, s);
}

struct cyclegan *cyclegan_new(backend_t be, const struct cyclegan_config *cfg)
{
    if (!cfg || cfg->batch < 1 || cfg->size < 1) {
        err_set("cyclegan_new: bad config");
        return NULL;
    }
    struct cyclegan *cg = calloc(1, sizeof *cg);
    if (!cg || !(cg->work = calloc(1, sizeof *cg->work))) {
        free(cg);
        err_set("cyclegan_new: out of memory");
        return NULL;
    }
    cg->cfg = *cfg;
    cg->be = be;
    cyclegan_set_loss_scale(cg, backend_get_precision(be) == BACKEND_FP16 ? SCALER_INIT : 0.0f);
    rng r;
    rng_seed(&r, cfg->seed);
    /* the reference's construction order: every draw comes from one stream */
    if (!(cg->G = gen_new(be, &cfg->gen, &r)) || !(cg->F = gen_new(be, &cfg->gen, &r)) ||
        !(cg->DX = disc_new(be, &cfg->disc, &r)) || !(cg->DY = disc_new(be, &cfg->disc, &r)))
        goto fail;
    for (int k = 0; k < 4; k++) {
        struct net *net = cg_net_at(cg, k);
        size_t np;
        net_params(net, &np);
        double lr = k < 2 ? cfg->lr_g : cfg->lr_d;
        struct adam *a = adam_new(be, np, lr, cfg->beta1, cfg->beta2, cfg->eps, cfg->weight_decay);
        if (!a)
            goto fail;
        if (k == 0)
            cg->opt_G = a;
        else if (k == 1)
            cg->opt_F = a;
        else if (k == 2)
            cg->opt_DX = a;
        else
            cg->opt_DY = a;
        /* torch's list of parameter tensors, for clip_grad_norm_ */
        long *sz = calloc((size_t)net_tensor_count(net), sizeof *sz);
        if (!sz) {
            err_set("cyclegan_new: out of memory");
            goto fail;
        }
        cg->work->sizes[k] = sz;
        for (int i = 0; i < net_tensor_count(net); i++) {
            const struct net_tensor *t = net_tensor_at(net, i);
            if (t->kind == NET_PARAM)
                sz[cg->work->counts[k]++] = (long)t->numel;
        }
    }
    if (!(cg->work->loss = backend_alloc(be, L_COUNT * sizeof(float))))
        goto fail;
    if (ensure_acts_(cg, cfg->batch))
        goto fail;
    return cg;
fail:
    err_wrap("cyclegan_new");
    cyclegan_free(cg);
    return NULL;
}

void cyclegan_free(struct cyclegan *cg)
{
    if (!cg)
        return;
    if (cg->work) {
        free_acts_(cg->work, cg->be);
        backend_dealloc(cg->be, cg->work->loss);
        for (int k = 0; k < 4; k++)
            free(cg->work->sizes[k]);
        free(cg->work);
    }
    adam_free(cg->opt_G), adam_free(cg->opt_F), adam_free(cg->opt_DX), adam_free(cg->opt_DY);
    net_free(cg->G), net_free(cg->F), net_free(cg->DX), net_free(cg->DY);
    free(cg);
}

const float *cyclegan_fake_y(struct cyclegan *cg)
{
    return net_acts_output(cg->work->aG[G_X], NULL);
}
const float *cyclegan_fake_x(struct cyclegan *cg)
{
    return net_acts_output(cg->work->aF[F_Y], NULL);
}

void cyclegan_set_epoch(struct cyclegan *cg, int sched_epoch, int n_epochs)
{
    double f = lr_schedule_factor(sched_epoch, n_epochs);
    for (int k = 0; k < 4; k++) {
        struct adam *a = cg_opt_at(cg, k);
        a->lr = a->initial_lr * f; /* LambdaLR: base_lr * lambda(last_epoch), in double */
    }
}

// ----------------------------------------------------------------------------
// the step

#define TRY(call)                                                                                            \
    do {                                                                                                     \
        if ((call) != 0)                                                                                     \
            return err_wrap("%s", __func__);                                                                 \
    } while (0)

/* Forwards shared by the step and eval: the six generator calls. */
static int gen_forwards_(struct cyclegan *cg, const float *x, const float *y)
{
    struct cyclegan_work *w = cg->work;
    TRY(net_forward(w->aF[F_Y], y));
    TRY(net_forward(w->aG[G_X], x));
    TRY(net_forward(w->aF[F_FY], net_acts_output(w->aG[G_X], NULL)));
    TRY(net_forward(w->aG[G_FX], net_acts_output(w->aF[F_Y], NULL)));
    TRY(net_forward(w->aG[G_Y], y));
    TRY(net_forward(w->aF[F_X], x));
    return 0;
}

/* The four L1 terms of the generator loss into their slots. */
static int gen_l1_losses_(struct cyclegan *cg, const float *x, const float *y, long nimg)
{
    struct cyclegan_work *w = cg->work;
    backend_t be = cg->be;
    TRY(loss_forward(be, w->loss + L_CYC_X, net_acts_output(w->aF[F_FY], NULL), x, 0, nimg, LOSS_L1));
    TRY(loss_forward(be, w->loss + L_CYC_Y, net_acts_output(w->aG[G_FX], NULL), y, 0, nimg, LOSS_L1));
    TRY(loss_forward(be, w->loss + L_ID_Y, net_acts_output(w->aG[G_Y], NULL), y, 0, nimg, LOSS_L1));
    TRY(loss_forward(be, w->loss + L_ID_X, net_acts_output(w->aF[F_X], NULL), x, 0, nimg, LOSS_L1));
    return 0;
}

/* Read the loss slots back and combine them in torch's float32 order. */
static int fill_losses_(struct cyclegan *cg, struct cyclegan_losses *out, int with_norms)
{
    float l[L_COUNT];
    TRY(backend_download(cg->be, l, cg->work->loss, sizeof l));
    if (!out)
        return 0;
    float la = (float)cg->cfg.lambda_adv, lc = (float)cg->cfg.lambda_cyc, li = (float)cg->cfg.lambda_id;
    out->f_adv = l[L_FADV];
    out->g_adv = l[L_GADV];
    out->cyc = l[L_CYC_X] + l[L_CYC_Y];
    out->id = l[L_ID_Y] + l[L_ID_X];
    float gen = la * l[L_FADV] + la * l[L_GADV];
    gen = gen + lc * out->cyc;
    out->gen = gen + li * out->id;
    out->dx = 0.5f * (l[L_DX_R] + l[L_DX_F]);
    out->dy = 0.5f * (l[L_DY_R] + l[L_DY_F]);
    out->norm_gen = with_norms ? l[L_NORM_GEN] : 0.0f;
    out->norm_dx = with_norms ? l[L_NORM_DX] : 0.0f;
    out->norm_dy = with_norms ? l[L_NORM_DY] : 0.0f;
    out->loss_scale = 1.0f, out->skipped = 0;
    return 0;
}

void cyclegan_set_loss_scale(struct cyclegan *cg, float init)
{
    cg->scaler.on = init > 0;
    cg->scaler.scale = init > 0 ? init : 1.0f;
    cg->scaler.growth_tracker = 0;
}

/* The gradient the losses start the backward with: scaled when scaling. */
static float loss_scale_(const struct cyclegan *cg)
{
    return cg->scaler.on ? cg->scaler.scale : 1.0f;
}

/* GradScaler.update() after the step's three updates. */
static void scaler_update_(struct cyclegan *cg, int skipped)
{
    struct cyclegan_scaler *sc = &cg->scaler;
    if (!sc->on)
        return;
    if (skipped) {
        sc->scale *= 0.5f;
        sc->growth_tracker = 0;
    } else if (++sc->growth_tracker == SCALER_INTERVAL) {
        sc->scale *= 2.0f;
        sc->growth_tracker = 0;
    }
}

static double max_norm_(const struct cyclegan *cg)
{
    /* no clipping: still report the norm (an infinite max_norm scales by 1) */
    return cg->cfg.clip_norm > 0 ? cg->cfg.clip_norm : INFINITY;
}

/* Unscale (when scaling), then clip, the norm into the loss slot `slot`; 1
 * when the update must be skipped because a gradient overflowed, 0 when it
 * may go on, -1 on error.  Without loss scaling the norm stays on the device
 * (nothing waits for a GPU); with it, the host needs the norm to decide,
 * as GradScaler does. */
static int clip_(struct cyclegan *cg, const int *nets, int count, int slot)
{
    struct grad_slab gs[2];
    for (int i = 0; i < count; i++) {
        int k = nets[i];
        gs[i] =
            (struct grad_slab){net_grads(cg_net_at(cg, k), NULL), cg->work->sizes[k], cg->work->counts[k]};
        size_t n;
        net_grads(cg_net_at(cg, k), &n);
        if (cg->grad_hook && cg->grad_hook(cg->be, gs[i].grad, n) != 0)
            return -1;
    }
    float *norm_dev = cg->work->loss + slot;
    if (!cg->scaler.on)
        return clip_grad_norm_dev(cg->be, gs, count, max_norm_(cg), norm_dev) ? -1 : 0;
    float inv = (float)(1.0 / (double)cg->scaler.scale); /* torch: scale.double().reciprocal().float() */
    for (int i = 0; i < count; i++) {
        size_t n;
        net_grads(cg_net_at(cg, nets[i]), &n);
        TRY(tensor_scale(cg->be, gs[i].grad, inv, (long)n));
    }
    float norm;
    if (clip_grad_norm(cg->be, gs, count, max_norm_(cg), &norm) ||
        backend_upload(cg->be, norm_dev, &norm, sizeof norm))
        return -1;
    if (!isfinite(norm)) {
        cg->scaler.skipped++;
        return 1;
    }
    return 0;
}

static int adam_net_(struct cyclegan *cg, int k)
{
    struct net *net = cg_net_at(cg, k);
    return adam_step(cg_opt_at(cg, k), net_params(net, NULL), net_grads(net, NULL));
}

/* Steps 2 and 3: one discriminator on real and (detached) fake images. */
static int disc_step_(struct cyclegan *cg, int k, struct net_acts *a, const float *real, const float *fake,
                      int slot, int norm_slot, int *skipped)
{
    struct cyclegan_work *w = cg->work;
    backend_t be = cg->be;
    int n = w->n;
    TRY(net_zero_grad(cg_net_at(cg, k))); /* drops what the generator loss left there */
    /* loss = 0.5*(MSE(D(real), 1) + MSE(D(fake), 0)): one call at a time,
     * gradients accumulate (the parameters do not change in between) */
    for (int part = 0; part < 2; part++) {
        float target = part == 0 ? 1.0f : 0.0f;
        TRY(net_forward(a, part == 0 ? real : fake));
        float *logit = net_acts_output(a, NULL);
        TRY(loss_forward(be, w->loss + slot + part, logit, NULL, target, n, LOSS_MSE));
        TRY(backend_zero(be, w->d_logit, (size_t)n * sizeof(float)));
        TRY(loss_backward(be, w->d_logit, logit, NULL, target, 0.5f * loss_scale_(cg), n, LOSS_MSE));
        TRY(net_backward(a, w->d_logit, NULL));
    }
    int rc = clip_(cg, &k, 1, norm_slot);
    if (rc < 0)
        return err_wrap("%s", __func__);
    if (rc > 0)
        *skipped |= 1 << (k - 1);
    else
        TRY(adam_net_(cg, k));
    return 0;
}

static void set_training_(struct cyclegan *cg, int on)
{
    for (int k = 0; k < 4; k++)
        net_set_training(cg_net_at(cg, k), on);
}

int cyclegan_train_step(struct cyclegan *cg, const float *x, const float *y, int batch,
                        struct cyclegan_losses *losses)
{
    if (!cg || !x || !y || batch < 1)
        return err_set("cyclegan_train_step: bad arguments");
    TRY(ensure_acts_(cg, batch));
    struct cyclegan_work *w = cg->work;
    backend_t be = cg->be;
    int n = batch, s = cg->cfg.size;
    long nimg = (long)n * 3 * s * s;
    size_t img_bytes = (size_t)nimg * sizeof(float);
    float S = loss_scale_(cg); /* 1 unless fp16 loss scaling: then la*S etc. are the scaled seeds */
    float la = (float)cg->cfg.lambda_adv * S, lc = (float)cg->cfg.lambda_cyc * S,
          li = (float)cg->cfg.lambda_id * S;
    int skipped = 0;
    set_training_(cg, 1);

    // ---- 1. generators: forwards in the reference's order
    TRY(net_zero_grad(cg->G));
    TRY(net_zero_grad(cg->F));
    TRY(gen_forwards_(cg, x, y));
    float *fake_x = net_acts_output(w->aF[F_Y], NULL), *fake_y = net_acts_output(w->aG[G_X], NULL);
    TRY(net_forward(w->aDX, fake_x));
    TRY(net_forward(w->aDY, fake_y));
    float *lx = net_acts_output(w->aDX, NULL), *ly = net_acts_output(w->aDY, NULL);
    TRY(loss_forward(be, w->loss + L_FADV, lx, NULL, 1.0f, n, LOSS_MSE));
    TRY(loss_forward(be, w->loss + L_GADV, ly, NULL, 1.0f, n, LOSS_MSE));
    TRY(gen_l1_losses_(cg, x, y, nimg));

    // backward, last calls first; d_fake_* sum the gradients of both uses
    TRY(backend_zero(be, w->d_fake_x, img_bytes));
    TRY(backend_zero(be, w->d_fake_y, img_bytes));
    TRY(backend_zero(be, w->d_logit, (size_t)n * sizeof(float)));
    TRY(loss_backward(be, w->d_logit, lx, NULL, 1.0f, la, n, LOSS_MSE));
    TRY(net_backward(w->aDX, w->d_logit, w->d_fake_x));
    TRY(backend_zero(be, w->d_logit, (size_t)n * sizeof(float)));
    TRY(loss_backward(be, w->d_logit, ly, NULL, 1.0f, la, n, LOSS_MSE));
    TRY(net_backward(w->aDY, w->d_logit, w->d_fake_y));
    struct {
        struct net_acts *a;
        const float *target;
        float scale;
        float *dx;
    } l1[4] = {
        {w->aF[F_FY], x, lc, w->d_fake_y}, /* rec_x = F(fake_y) */
        {w->aG[G_FX], y, lc, w->d_fake_x}, /* rec_y = G(fake_x) */
        {w->aG[G_Y], y, li, NULL},         /* identity: G(y) */
        {w->aF[F_X], x, li, NULL},         /* identity: F(x) */
    };
    for (int i = 0; i < 4; i++) {
        TRY(backend_zero(be, w->d_tmp, img_bytes));
        TRY(loss_backward(be, w->d_tmp, net_acts_output(l1[i].a, NULL), l1[i].target, 0, l1[i].scale, nimg,
                          LOSS_L1));
        TRY(net_backward(l1[i].a, w->d_tmp, l1[i].dx));
    }
    TRY(net_backward(w->aG[G_X], w->d_fake_y, NULL));
    TRY(net_backward(w->aF[F_Y], w->d_fake_x, NULL));
    static const int GF[2] = {0, 1};
    int rc = clip_(cg, GF, 2, L_NORM_GEN);
    if (rc < 0)
        return err_wrap("%s", __func__);
    if (rc > 0)
        skipped |= 1;
    else {
        TRY(adam_net_(cg, 0));
        TRY(adam_net_(cg, 1));
    }

    // ---- 2. DX on x and fake_x.detach(); 3. DY on y and fake_y.detach()
    TRY(disc_step_(cg, 2, w->aDX, x, fake_x, L_DX_R, L_NORM_DX, &skipped));
    TRY(disc_step_(cg, 3, w->aDY, y, fake_y, L_DY_R, L_NORM_DY, &skipped));
    TRY(fill_losses_(cg, losses, 1));
    if (losses)
        losses->loss_scale = S, losses->skipped = skipped;
    scaler_update_(cg, skipped);
    return 0;
}

/* The eval losses; without the discriminators (with_d 0) only the L1 terms,
 * every value that needs DX or DY NaN. */
static int eval_(struct cyclegan *cg, const float *x, const float *y, int batch,
                 struct cyclegan_losses *losses, int with_d)
{
    if (!cg || !x || !y || batch < 1)
        return err_set("cyclegan_eval: bad arguments");
    TRY(ensure_acts_(cg, batch));
    struct cyclegan_work *w = cg->work;
    backend_t be = cg->be;
    int n = batch, s = cg->cfg.size;
    long nimg = (long)n * 3 * s * s;
    set_training_(cg, 0);
    int rc = gen_forwards_(cg, x, y);
    const float *fake_x = net_acts_output(w->aF[F_Y], NULL), *fake_y = net_acts_output(w->aG[G_X], NULL);
    /* eval mode and fixed parameters: D(fake) serves both the adversarial
     * term and the discriminator loss */
    struct {
        struct net_acts *a;
        const float *in;
        float target;
        int slot;
    } d[6] = {
        {w->aDX, fake_x, 1.0f, L_FADV}, {w->aDX, fake_x, 0.0f, L_DX_F}, {w->aDX, x, 1.0f, L_DX_R},
        {w->aDY, fake_y, 1.0f, L_GADV}, {w->aDY, fake_y, 0.0f, L_DY_F}, {w->aDY, y, 1.0f, L_DY_R},
    };
    for (int i = 0; with_d && i < 6 && !rc; i++) {
        if (i % 3 != 1)
            rc = net_forward(d[i].a, d[i].in);
        if (!rc)
            rc = loss_forward(be, w->loss + d[i].slot, net_acts_output(d[i].a, NULL), NULL, d[i].target, n,
                              LOSS_MSE);
    }
    if (!rc)
        rc = gen_l1_losses_(cg, x, y, nimg);
    set_training_(cg, 1);
    if (rc || fill_losses_(cg, losses, 0))
        return err_wrap("cyclegan_eval");
    if (!with_d && losses)
        losses->f_adv = losses->g_adv = losses->gen = losses->dx = losses->dy = NAN;
    return 0;
}

int cyclegan_eval(struct cyclegan *cg, const float *x, const float *y, int batch,
                  struct cyclegan_losses *losses)
{
    return eval_(cg, x, y, batch, losses, 1);
}

int cyclegan_eval_generators(struct cyclegan *cg, const float *x, const float *y, int batch,
                             struct cyclegan_losses *losses)
{
    return eval_(cg, x, y, batch, losses, 0);
}
