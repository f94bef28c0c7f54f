/*
 * optim: Adam state, clipping and schedule on top of the backend's
 * optimiser ops.  See optim.h.
 */
#include "optim.h"

#include <math.h>
#include <stdlib.h>

#include "backend/backend-impl.h"
#include "base/err.h"

static int has_optim_ops_(backend_t be)
{
    return be && be->iface->adam_step && be->iface->sumsq && be->iface->scale;
}

struct adam *adam_new(backend_t be, size_t n, double lr, double beta1, double beta2, double eps,
                      double weight_decay)
{
    if (!has_optim_ops_(be)) {
        err_set("adam_new: backend %s has no optimiser ops", be ? be->iface->name : "(none)");
        return NULL;
    }
    if (!(lr >= 0) || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps >= 0) ||
        !(weight_decay >= 0)) {
        err_set("adam_new: bad hyper-parameters (lr %g, betas %g %g, eps %g, weight_decay %g)", lr, beta1,
                beta2, eps, weight_decay);
        return NULL;
    }
    struct adam *a = calloc(1, sizeof *a);
    if (!a) {
        err_set("adam_new: out of memory");
        return NULL;
    }
    *a = (struct adam){.be = be,
                       .n = n,
                       .lr = lr,
                       .initial_lr = lr,
                       .beta1 = beta1,
                       .beta2 = beta2,
                       .eps = eps,
                       .weight_decay = weight_decay};
    a->exp_avg = backend_alloc(be, (n ? n : 1) * sizeof(float));
    a->exp_avg_sq = backend_alloc(be, (n ? n : 1) * sizeof(float));
    if (!a->exp_avg || !a->exp_avg_sq) {
        adam_free(a);
        return NULL;
    }
    return a;
}

void adam_free(struct adam *a)
{
    if (!a)
        return;
    backend_dealloc(a->be, a->exp_avg);
    backend_dealloc(a->be, a->exp_avg_sq);
    free(a);
}

int adam_reset(struct adam *a)
{
    a->step = 0;
    if (backend_zero(a->be, a->exp_avg, a->n * sizeof(float)))
        return -1;
    return backend_zero(a->be, a->exp_avg_sq, a->n * sizeof(float));
}

int adam_step(struct adam *a, float *params, const float *grads)
{
    if (!a || !params || !grads)
        return err_set("adam_step: bad arguments");
    a->step++;
    if (a->be->iface->adam_step(a->be, params, grads, a->exp_avg, a->exp_avg_sq, (long)a->n, a->lr, a->beta1,
                                a->beta2, a->eps, a->weight_decay, a->step))
        return err_wrap("adam_step");
    return 0;
}

// ----------------------------------------------------------------------------
// clip_grad_norm_: per-tensor norms (float), their 2-norm (float), then one
// scale of every slab.  torch computes `max_norm / (total + 1e-6)` as
// Tensor.__rtruediv__, i.e. reciprocal() * max_norm, in float32.

#define CLIP_BATCH 128 /* per-tensor sums fetched per sumsq call */

int clip_grad_norm(backend_t be, const struct grad_slab *slabs, int nslabs, double max_norm,
                   float *total_norm)
{
    if (!has_optim_ops_(be))
        return err_set("clip_grad_norm: backend has no optimiser ops");
    double acc = 0, part[CLIP_BATCH];
    for (int s = 0; s < nslabs; s++) {
        const float *x = slabs[s].grad;
        for (int i0 = 0; i0 < slabs[s].count; i0 += CLIP_BATCH) {
            int k = slabs[s].count - i0 < CLIP_BATCH ? slabs[s].count - i0 : CLIP_BATCH;
            if (be->iface->sumsq(be, part, x, slabs[s].sizes + i0, k))
                return err_wrap("clip_grad_norm");
            for (int i = 0; i < k; i++) {
                float norm = (float)sqrt(part[i]); /* torch.norm(g) is a float tensor */
                acc += (double)norm * norm;
                x += slabs[s].sizes[i0 + i];
            }
        }
    }
    float total = (float)sqrt(acc);
    if (total_norm)
        *total_norm = total;
    float coef = (1.0f / (total + 1e-6f)) * (float)max_norm;
    if (coef > 1.0f)
        coef = 1.0f; /* torch.clamp(max=1.0); NaN stays NaN */
    if (coef == 1.0f)
        return 0; /* multiplying by 1 changes nothing */
    for (int s = 0; s < nslabs; s++) {
        long n = 0;
        for (int i = 0; i < slabs[s].count; i++)
            n += slabs[s].sizes[i];
        if (be->iface->scale(be, slabs[s].grad, coef, n))
            return err_wrap("clip_grad_norm");
    }
    return 0;
}

int clip_grad_norm_dev(backend_t be, const struct grad_slab *slabs, int nslabs, double max_norm,
                       float *norm_dev)
{
    if (be && be->iface->clip_norm) {
        if (be->iface->clip_norm(be, slabs, nslabs, max_norm, norm_dev))
            return err_wrap("clip_grad_norm");
        return 0;
    }
    float norm;
    if (clip_grad_norm(be, slabs, nslabs, max_norm, &norm))
        return -1;
    return backend_upload(be, norm_dev, &norm, sizeof norm);
}

double lr_schedule_factor(int k, int n_epochs)
{
    if (n_epochs < 1)
        return 1.0; /* no schedule (Python would divide by zero) */
    int half = n_epochs / 2;
    if (k < half)
        return 1.0;
    double f = (double)(n_epochs - k) / (double)(n_epochs - half);
    return f > 0 ? f : 0.0;
}
