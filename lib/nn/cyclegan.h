/*
 * cyclegan: the whole aging CycleGAN: generators G (young x -> old y) and F
 * (old -> young), discriminators DX (young) and DY (old), one Adam per net,
 * the reference's training step (DESIGN.md "The model"), an evaluation pass,
 * and the training state to and from a safetensors checkpoint
 * (docs/checkpoint.md, kind "train").
 *
 *   struct cyclegan_config cfg;
 *   cyclegan_config_default(&cfg);            // reference sizes and options
 *   cfg.batch = 4; cfg.size = 256; cfg.seed = 0;
 *   struct cyclegan *cg = cyclegan_new(be, &cfg);   // torch.manual_seed(0); G, F, DX, DY
 *   struct cyclegan_losses l;
 *   cyclegan_train_step(cg, x, y, 4, &l);     // x young, y old: [4,3,256,256] device
 *   cyclegan_set_epoch(cg, epoch, n_epochs);  // LambdaLR: lr of the four Adams
 *   cyclegan_eval(cg, vx, vy, 4, &l);         // validation losses, nothing updated
 *   cyclegan_save(cg, "last.safetensors", &(struct cyclegan_meta){.epoch = 1, ...});
 *   cyclegan_load(cg, "last.safetensors", &meta);  // resume: bit-identical continuation
 *   cyclegan_free(cg);
 *
 * The step allocates nothing: every activation set (G and F are each called
 * three times per step, DX and DY three times each, and each call keeps its
 * own activations) and gradient buffer is built by cyclegan_new for
 * cfg.batch images of cfg.size x cfg.size.  A call with another batch size
 * rebuilds them once (e.g. a short last batch), then runs allocation-free.
 */
#pragma once

#include <stdint.h>

#include "backend/backend.h"
#include "model.h"
#include "optim.h"
#include "base/rng.h"

struct cyclegan_config {
    struct gen_config gen;   /* ngf, residual blocks (reference: 32, 9) */
    struct disc_config disc; /* ndf (reference: 32) */
    int batch;               /* images per batch the activation sets are built for */
    int size;                /* image height = width (reference: 256; >= 32 for D) */
    int resize;              /* the framing of the training images (aug --resize), recorded
                              * in checkpoints; 0: transform_resize_size(size) */
    double lr_g, lr_d;       /* initial learning rates: 2e-4 (G, F), 1e-4 (DX, DY) */
    double beta1, beta2;     /* 0.5, 0.999 */
    double eps;              /* 1e-8 */
    double weight_decay;     /* 1e-4, L2 added to the gradient (Adam, not AdamW) */
    double lambda_adv;       /* 2 */
    double lambda_cyc;       /* 4 */
    double lambda_id;        /* 0.5 */
    double clip_norm;        /* 1.0: max joint grad norm of G+F, of DX, of DY; <= 0: off */
    uint64_t seed;           /* torch.manual_seed(seed), then G, F, DX, DY are built */
};

/* The reference's values above, batch 1, size 256, seed 0. */
void cyclegan_config_default(struct cyclegan_config *cfg);

struct cyclegan_work; /* private: activation sets, gradient buffers */

/* Dynamic loss scaling for fp16 training, as torch.cuda.amp.GradScaler with
 * its defaults: the losses' gradients are multiplied by `scale`, the
 * parameter gradients divided by it (in float, by the float reciprocal)
 * before clipping; an update whose gradients hold an inf or NaN is skipped
 * (Adam untouched, its step count too).  One scaler serves the three
 * updates of a step and is updated once after them: x0.5 when any update
 * was skipped, x2 after 2000 steps in a row without one. */
struct cyclegan_scaler {
    int on;             /* cyclegan_new: on when the backend's precision is fp16 */
    float scale;        /* 65536 at the start */
    int growth_tracker; /* clean steps since the last change */
    long skipped;       /* updates skipped so far (G+F, DX, DY counted apart) */
};

#define SCALER_INIT     65536.0f
#define SCALER_INTERVAL 2000

struct cyclegan {
    struct cyclegan_config cfg;
    backend_t be;
    struct cyclegan_scaler scaler;
    struct net *G, *F, *DX, *DY;
    struct adam *opt_G, *opt_F, *opt_DX, *opt_DY;
    struct cyclegan_work *work;
    /* Optional (NULL: none): called on each net's gradient slab (device,
     * n floats) after its backward and before clipping, in the order G, F,
     * DX, DY; data-parallel training averages them over the ranks there
     * (lib/dist/dist.h), so that clipping and Adam see the mean gradient. */
    int (*grad_hook)(backend_t be, float *grad, size_t n);
};

/* Build the four nets with PyTorch default initialisation from one rng
 * seeded cfg->seed (exactly torch.manual_seed(seed) then Generator,
 * Generator, Discriminator, Discriminator), the four Adams (moments zero),
 * and the activation sets.  Caller owns the result (cyclegan_free); NULL +
 * err_set on failure. */
struct cyclegan *cyclegan_new(backend_t be, const struct cyclegan_config *cfg);
void cyclegan_free(struct cyclegan *cg); /* NULL-safe */

/* Losses of one step or evaluation; every value is unweighted unless said. */
struct cyclegan_losses {
    float g_adv;      /* MSE(DY(G(x)), 1): G's adversarial term */
    float f_adv;      /* MSE(DX(F(y)), 1): F's adversarial term */
    float cyc;        /* L1(F(G(x)), x) + L1(G(F(y)), y) */
    float id;         /* L1(G(y), y) + L1(F(x), x) */
    float gen;        /* the generator loss that is back-propagated:
                         la*f_adv + la*g_adv + lc*cyc + li*id (float32, torch's order) */
    float dx;         /* 0.5*(MSE(DX(x), 1) + MSE(DX(F(y)), 0)) */
    float dy;         /* 0.5*(MSE(DY(y), 1) + MSE(DY(G(x)), 0)) */
    float norm_gen;   /* gradient norms before clipping (train step only, else 0): G+F, */
    float norm_dx;    /*   DX, */
    float norm_dy;    /*   DY */
    float loss_scale; /* the scale this step used (1 without loss scaling) */
    int skipped;      /* updates this step skipped on overflow: bit 0 G+F, 1 DX, 2 DY */
};

/* One training step on x (young) and y (old), both [batch,3,size,size] on
 * the device, exactly as the reference:
 *   1. generators: fake_x = F(y), fake_y = G(x), rec_x = F(fake_y),
 *      rec_y = G(fake_x), G(y), F(x); loss gen (above); backward (the
 *      discriminators' parameter gradients it produces are discarded);
 *      clip the joint norm of G's and F's gradients; Adam G, F;
 *   2. DX on x and fake_x (the fakes of step 1, detached), clip, Adam;
 *   3. DY on y and fake_y, clip, Adam.
 * Every forward runs in training mode and updates its BN running
 * statistics and num_batches_tracked (including DX(fake_x) in step 1 and
 * again in step 2), in the reference's order.  losses may be NULL. */
int cyclegan_train_step(struct cyclegan *cg, const float *x, const float *y, int batch,
                        struct cyclegan_losses *losses);

/* Loss scaling from now on: init > 0 turns it on at that scale (growth
 * tracker 0), 0 turns it off. */
void cyclegan_set_loss_scale(struct cyclegan *cg, float init);

/* The same losses with every net in eval mode (BN running statistics), no
 * gradient, no update, BN statistics untouched (torch: .eval() + no_grad).
 * The nets are back in training mode afterwards. */
int cyclegan_eval(struct cyclegan *cg, const float *x, const float *y, int batch,
                  struct cyclegan_losses *losses);
/* The same with G and F alone (a checkpoint without discriminators): the
 * cycle and identity terms; g_adv, f_adv, gen, dx and dy are NaN. */
int cyclegan_eval_generators(struct cyclegan *cg, const float *x, const float *y, int batch,
                             struct cyclegan_losses *losses);

/* The outputs of the last step/eval ([batch,3,size,size] device, owned by
 * cg, valid until the next call): G(x) and F(y). */
const float *cyclegan_fake_y(struct cyclegan *cg);
const float *cyclegan_fake_x(struct cyclegan *cg);

/* LambdaLR: lr of opt_G/opt_F/opt_DX/opt_DY = initial_lr *
 * lr_schedule_factor(sched_epoch, n_epochs). */
void cyclegan_set_epoch(struct cyclegan *cg, int sched_epoch, int n_epochs);

// ----------------------------------------------------------------------------
// Checkpoints (docs/checkpoint.md)

/* What a training checkpoint holds besides nets and optimisers. */
struct cyclegan_meta {
    int64_t epoch;       /* epochs completed */
    int64_t step;        /* optimiser steps (batches) over the whole run */
    int64_t epoch_step;  /* steps done into epoch+1 (a mid-epoch checkpoint), else 0 */
    int64_t sched_epoch; /* the schedulers' last_epoch */
    int n_epochs;        /* total epochs of the run ("epochs" in config), 0 = unknown */
    int has_rng;         /* save: write rng; load: set when the file has one */
    rng rng;             /* the trainer's generator ("rng", hex of rng_save) */
};

/* Bounds on the counters a checkpoint records (the trainer's --epochs
 * allows at most CYCLEGAN_MAX_EPOCHS); a reader refuses values outside
 * them rather than resume from a wrapped-around count. */
#define CYCLEGAN_MAX_EPOCHS 1000000
#define CYCLEGAN_MAX_STEPS  (INT64_C(1) << 53)

/* epoch, step, epoch_step and sched_epoch from f's metadata (0 when
 * absent), each a decimal integer in [0, CYCLEGAN_MAX_EPOCHS] or
 * [0, CYCLEGAN_MAX_STEPS] with epoch_step <= step; the other fields of m
 * are untouched.  -1 naming the file and the key otherwise. */
struct st_file;
int cyclegan_meta_read(const struct st_file *f, struct cyclegan_meta *m);

/* Write the whole training state (kind "train"): the four nets, the Adam
 * moments and steps (only once stepped, as torch), param_groups, config and
 * meta.  Atomic (temporary file + rename).  meta may be NULL (all zero). */
int cyclegan_save(struct cyclegan *cg, const char *path, const struct cyclegan_meta *meta);

/* Restore everything cyclegan_save wrote into cg, whose sizes must match
 * the file's (see cyclegan_config_load): nets, moments, steps, lrs, betas,
 * eps, weight decay, lambdas and clip norm.  A file without optimiser state
 * (weights only, or saved before the first step) resets the Adams.  meta
 * (may be NULL) gets the file's meta.  After a load, training continues
 * bit for bit as if it had never stopped. */
int cyclegan_load(struct cyclegan *cg, const char *path, struct cyclegan_meta *meta);
/* The same for G and F only (and their optimisers), for evaluating a
 * weights file without discriminators; DX and DY are left as they are. */
int cyclegan_load_generators(struct cyclegan *cg, const char *path, struct cyclegan_meta *meta);
/* 1 when the checkpoint holds DX or DY tensors, 0 when not, -1 (err_msg)
 * when it cannot be read. */
int cyclegan_has_discriminators(const char *path);

/* The config a checkpoint was written with (net sizes read off the tensors,
 * the rest from its "config" metadata, defaults for what is missing: the
 * default discriminators for a file of G and F only), to build a matching
 * cyclegan before cyclegan_load. */
int cyclegan_config_load(const char *path, struct cyclegan_config *cfg);
