/*
 * backend-impl: the private vtable behind backend_t.  A backend fills a
 * struct backend_iface; entries marked (optional) may be NULL, and
 * backend_supports() reports what is there.  Every op returns 0 on success
 * or -1 after err_set().  Layouts are PyTorch's: activations NCHW, conv
 * weights OIHW [Cout,Cin,k,k], transposed-conv weights IOHW [Cin,Cout,k,k].
 * Conventions for every backward: the input gradient (din) is OVERWRITTEN
 * (it may be NULL when not needed), parameter gradients are ACCUMULATED (+=).
 */
#pragma once

#include "backend.h"
#include "layers.h"
#include "layers-pool.h"

struct backend_iface {
    const char *name;
    void (*free)(struct backend *be);

    // ---- memory
    void *(*alloc)(struct backend *be, size_t bytes);
    void (*dealloc)(struct backend *be, void *p);
    int (*upload)(struct backend *be, void *dst, const void *src, size_t bytes);
    int (*download)(struct backend *be, void *dst, const void *src, size_t bytes);
    int (*copy)(struct backend *be, void *dst, const void *src, size_t bytes);
    int (*zero)(struct backend *be, void *dst, size_t bytes);
    int (*synchronize)(struct backend *be); /* (optional) */
    int (*reserve)(struct backend *be, size_t bytes);

    // ---- convolutions (shape in struct conv_shape, see layers.h)
    int (*conv2d_forward)(struct backend *be, float *out, const float *in, const float *w, const float *b,
                          const struct conv_shape *s);
    int (*conv2d_backward)(struct backend *be, float *din, float *dw, float *db, const float *dout,
                           const float *in, const float *w, const struct conv_shape *s);
    int (*convt2d_forward)(struct backend *be, float *out, const float *in, const float *w, const float *b,
                           const struct conv_shape *s);
    int (*convt2d_backward)(struct backend *be, float *din, float *dw, float *db, const float *dout,
                            const float *in, const float *w, const struct conv_shape *s);
    /* (optional) bytes of workspace one conv2d / convt2d call of this shape
     * needs (conv2d_workspace_bytes: what a model reserves when it is built);
     * without them 0, and the backend sizes its workspace on first use. */
    size_t (*conv2d_workspace)(struct backend *be, const struct conv_shape *s);
    size_t (*convt2d_workspace)(struct backend *be, const struct conv_shape *s);

    // ---- padding, norms, activations
    int (*reflpad_forward)(struct backend *be, float *out, const float *in, int planes, int h, int w,
                           int pad);
    int (*reflpad_backward)(struct backend *be, float *din, const float *dout, int planes, int h, int w,
                            int pad);
    int (*batchnorm_forward)(struct backend *be, float *out, float *mean, float *rstd, const float *in,
                             const float *gamma, const float *beta, float *run_mean, float *run_var, int n,
                             int c, int hw, int training, double momentum, double eps);
    int (*batchnorm_backward)(struct backend *be, float *din, float *dgamma, float *dbeta, const float *dout,
                              const float *in, const float *mean, const float *rstd, const float *gamma,
                              int n, int c, int hw, int training);
    int (*instnorm_forward)(struct backend *be, float *out, float *mean, float *rstd, const float *in,
                            int planes, int hw, double eps);
    int (*instnorm_backward)(struct backend *be, float *din, const float *dout, const float *in,
                             const float *mean, const float *rstd, int planes, int hw);
    int (*act_forward)(struct backend *be, float *out, const float *in, long n, enum act_kind kind);
    int (*act_backward)(struct backend *be, float *din, const float *dout, const float *out, long n,
                        enum act_kind kind);

    // ---- reductions, losses, elementwise
    int (*mean_forward)(struct backend *be, float *out, const float *in, int n, long m);
    int (*mean_backward)(struct backend *be, float *din, const float *dout, int n, long m);
    int (*loss_forward)(struct backend *be, float *out, const float *x, const float *target,
                        float target_value, long n, enum loss_kind kind);
    int (*loss_backward)(struct backend *be, float *dx, const float *x, const float *target,
                         float target_value, float scale, long n, enum loss_kind kind);
    int (*axpy)(struct backend *be, float *y, float a, const float *x, long n);

    // ---- optimiser (lib/nn/optim.h).  (optional as a group: adam_step, sumsq, scale)
    /* One PyTorch 1.13 Adam update (torch.optim.Adam, single-tensor path, no
     * amsgrad, not AdamW) of n parameters; `step` is the step count AFTER the
     * increment (1 on the first update).  The host scalars are doubles as in
     * torch's Python code; every float32 tensor operation keeps torch's order
     * and fusing so results agree bit for bit with the CPU build:
     *   g  = fma(param, (float)wd, grad)              [grad.add(param, alpha=wd)]
     *   m  = fma(g, (float)(1-b1), m*(float)b1)       [m.mul_(b1).add_(g, alpha=1-b1)]
     *   v  = fma((float)(1-b2)*g, g, v*(float)b2)     [v.mul_(b2).addcmul_(g, g, value=1-b2)]
     *   denom = sqrt(v) / (float)sqrt(1-b2^step) + (float)eps
     *   param += ((float)(-lr/(1-b1^step)) * m) / denom
     * grad is not modified. */
    int (*adam_step)(struct backend *be, float *param, const float *grad, float *exp_avg, float *exp_avg_sq,
                     long n, double lr, double beta1, double beta2, double eps, double weight_decay,
                     long step);
    /* out[i] (HOST memory) = sum of squares, accumulated in double, of the
     * i-th of `count` runs of x laid back to back: run i has sizes[i] floats
     * and starts at x + sizes[0] + ... + sizes[i-1].  Deterministic: the same
     * inputs give the same bits whatever the thread count. */
    int (*sumsq)(struct backend *be, double *out, const float *x, const long *sizes, int count);
    /* x [n] *= a */
    int (*scale)(struct backend *be, float *x, float a, long n);
    /* (optional) clip_grad_norm_dev (lib/nn/optim.h) on the device: the norm to
     * norm_dev (device), the coefficient computed and applied there, with
     * clip_grad_norm's arithmetic exactly.  Without it, optim.c clips
     * through sumsq/scale and uploads the norm. */
    int (*clip_norm)(struct backend *be, const struct grad_slab *slabs, int nslabs, double max_norm,
                     float *norm_dev);

    // ---- inference ops of the FID Inception network (lib/backend/layers-pool.h).  (optional)
    size_t (*conv_ex_workspace)(struct backend *be, const struct conv_ex_shape *s);
    int (*conv_ex_forward)(struct backend *be, float *out, const float *in, const float *w, const float *b,
                           const struct conv_ex_shape *s, float *ws);
    int (*pool2d_forward)(struct backend *be, float *out, const float *in, const struct pool_shape *s);
    int (*resize_bilinear)(struct backend *be, float *out, const float *in, int planes, int h, int w,
                           int hout, int wout, enum resize_mode mode, float mul, float add);
};

/* In a dispatcher returning int: -1 + err_set (the caller includes err.h)
 * when there is no backend or it lacks the vtable entry `op`. */
#define BACKEND_NEED(be, op)                                                                                 \
    do {                                                                                                     \
        if (!(be))                                                                                           \
            return err_set("%s: no backend", __func__);                                                      \
        if (!(be)->iface->op)                                                                                \
            return err_set("%s: not supported by backend %s", __func__, (be)->iface->name);                  \
    } while (0)

struct backend {
    const struct backend_iface *iface;
    void *context;                    /* backend-private state */
    enum backend_precision precision; /* of the convolutions (backend.h) */
    long allocs;                      /* backend_allocations(): allocations and workspace growths */
};
