/*
 * optim: Adam, gradient-norm clipping and the learning-rate schedule of the
 * reference trainer, with PyTorch 1.13 semantics (torch.optim.Adam with L2
 * weight decay, torch.nn.utils.clip_grad_norm_, LambdaLR with a linear
 * decay over the second half of the epochs).  The arithmetic runs on the
 * backend (vtable entries adam_step / sumsq / scale).
 *
 *   struct adam *opt = adam_new(be, n_params, 2e-4, 0.5, 0.999, 1e-8, 1e-4);
 *   ...backward fills grads...
 *   float norm;
 *   struct grad_slab gs[2] = {{gradsG, sizesG, countG}, {gradsF, sizesF, countF}};
 *   clip_grad_norm(be, gs, 2, 1.0, &norm);   // joint norm of G and F
 *   adam_step(opt, params, grads);
 *   opt->lr = opt->initial_lr * lr_schedule_factor(epoch, n_epochs);
 *   adam_free(opt);
 *
 * An adam owns the two moment slabs of ONE parameter slab (lib/nn/model.h
 * net_params layout), so it updates all the tensors of a net in one call;
 * Adam is elementwise, so this equals torch's per-tensor loop.
 */
#pragma once

#include <stddef.h>

#include "backend/backend.h"
#include "backend/layers.h"

struct adam {
    backend_t be;
    size_t n;                    /* floats in the parameter slab */
    float *exp_avg, *exp_avg_sq; /* device slabs [n], owned */
    long step;                   /* updates done: torch state['step'] */
    double lr;                   /* current learning rate (the schedule sets it) */
    double initial_lr;           /* LambdaLR's base lr */
    double beta1, beta2, eps, weight_decay;
};

/* Moments zero, step 0, lr = initial_lr = lr.  Caller owns it (adam_free);
 * NULL + err_set on failure or when the backend has no optimiser ops. */
struct adam *adam_new(backend_t be, size_t n, double lr, double beta1, double beta2, double eps,
                      double weight_decay);
void adam_free(struct adam *a); /* NULL-safe */
/* Back to the state of adam_new (moments zero, step 0); lr untouched. */
int adam_reset(struct adam *a);

/* One update: step++, then params [n] (device) move by grads [n] (device,
 * not modified) with lr = a->lr.  0, or -1 + err_set. */
int adam_step(struct adam *a, float *params, const float *grads);

/* struct grad_slab: one gradient slab (lib/backend/layers.h). */

/* torch.nn.utils.clip_grad_norm_(all tensors of all slabs, max_norm), 2-norm:
 * total = ||(||g_1||, ..., ||g_k||)||_2 (each tensor's norm rounded to float,
 * as torch stacks float norms; sums of squares in double), coef =
 * min(1, max_norm / (total + 1e-6)) in float, and every gradient *= coef.
 * *total_norm (may be NULL) gets the norm BEFORE clipping.  No allocation. */
int clip_grad_norm(backend_t be, const struct grad_slab *slabs, int nslabs, double max_norm,
                   float *total_norm);
/* The same clipping, bit for bit, with the norm before clipping left in
 * device memory (norm_dev: one float), so that on a GPU nothing waits for
 * the device: the coefficient is computed and applied there.  Backends
 * without a device-side version run clip_grad_norm and upload the norm. */
int clip_grad_norm_dev(backend_t be, const struct grad_slab *slabs, int nslabs, double max_norm,
                       float *norm_dev);

/* The reference's LambdaLR factor for 0-based epoch k of n_epochs: 1 for
 * k < n/2, then linearly to 0: max(0, (n-k)/(n - n/2)) (integer n/2). */
double lr_schedule_factor(int k, int n_epochs);
