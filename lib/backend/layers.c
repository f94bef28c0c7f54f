/*
 * layers: argument checks and dispatch of every op to the backend vtable.
 * The arithmetic lives in the backends (lib/cpu/backend-cpu.c, ...).
 */
#include "layers.h"

#include <string.h>

#include "backend-impl.h"
#include "base/err.h"

// ---- convolutions

int conv2d_shape(struct conv_shape *s, int n, int cin, int h, int w, int cout, int k, int stride, int pad)
{
    if (n < 1 || cin < 1 || cout < 1 || k < 1 || stride < 1 || pad < 0)
        return err_set("conv2d: bad arguments");
    *s = (struct conv_shape){
        .n = n, .cin = cin, .h = h, .w = w, .cout = cout, .k = k, .stride = stride, .pad = pad, .out_pad = 0};
    s->hout = (h + 2 * pad - k) / stride + 1;
    s->wout = (w + 2 * pad - k) / stride + 1;
    if (h + 2 * pad < k || w + 2 * pad < k || s->hout < 1 || s->wout < 1)
        return err_set("conv2d: input %dx%d too small for kernel %d", h, w, k);
    return 0;
}

int convt2d_shape(struct conv_shape *s, int n, int cin, int h, int w, int cout, int k, int stride, int pad,
                  int out_pad)
{
    if (n < 1 || cin < 1 || cout < 1 || k < 1 || stride < 1 || pad < 0 || out_pad < 0 || h < 1 || w < 1 ||
        out_pad >= stride)
        return err_set("convt2d: bad arguments");
    *s = (struct conv_shape){.n = n,
                             .cin = cin,
                             .h = h,
                             .w = w,
                             .cout = cout,
                             .k = k,
                             .stride = stride,
                             .pad = pad,
                             .out_pad = out_pad};
    s->hout = (h - 1) * stride - 2 * pad + k + out_pad;
    s->wout = (w - 1) * stride - 2 * pad + k + out_pad;
    if (s->hout < 1 || s->wout < 1)
        return err_set("convt2d: empty output");
    return 0;
}

size_t conv2d_workspace_bytes(backend_t be, const struct conv_shape *s)
{
    if (!be || !be->iface->conv2d_workspace)
        return 0;
    return be->iface->conv2d_workspace(be, s);
}

size_t convt2d_workspace_bytes(backend_t be, const struct conv_shape *s)
{
    if (!be || !be->iface->convt2d_workspace)
        return 0;
    return be->iface->convt2d_workspace(be, s);
}

int conv2d_forward(backend_t be, float *out, const float *in, const float *w, const float *b,
                   const struct conv_shape *s)
{
    BACKEND_NEED(be, conv2d_forward);
    return be->iface->conv2d_forward(be, out, in, w, b, s);
}

int conv2d_backward(backend_t be, float *din, float *dw, float *db, const float *dout, const float *in,
                    const float *w, const struct conv_shape *s)
{
    BACKEND_NEED(be, conv2d_backward);
    return be->iface->conv2d_backward(be, din, dw, db, dout, in, w, s);
}

int convt2d_forward(backend_t be, float *out, const float *in, const float *w, const float *b,
                    const struct conv_shape *s)
{
    BACKEND_NEED(be, convt2d_forward);
    return be->iface->convt2d_forward(be, out, in, w, b, s);
}

int convt2d_backward(backend_t be, float *din, float *dw, float *db, const float *dout, const float *in,
                     const float *w, const struct conv_shape *s)
{
    BACKEND_NEED(be, convt2d_backward);
    return be->iface->convt2d_backward(be, din, dw, db, dout, in, w, s);
}

// ---- padding, norms, activations

int reflpad_forward(backend_t be, float *out, const float *in, int planes, int h, int w, int pad)
{
    BACKEND_NEED(be, reflpad_forward);
    if (pad < 0 || pad >= h || pad >= w)
        return err_set("reflpad: pad %d vs %dx%d", pad, h, w);
    return be->iface->reflpad_forward(be, out, in, planes, h, w, pad);
}

int reflpad_backward(backend_t be, float *din, const float *dout, int planes, int h, int w, int pad)
{
    BACKEND_NEED(be, reflpad_backward);
    if (pad < 0 || pad >= h || pad >= w)
        return err_set("reflpad: pad %d vs %dx%d", pad, h, w);
    return be->iface->reflpad_backward(be, din, dout, planes, h, w, pad);
}

int batchnorm_forward(backend_t be, float *out, float *mean, float *rstd, const float *in, const float *gamma,
                      const float *beta, float *run_mean, float *run_var, int n, int c, int hw, int training,
                      double momentum, double eps)
{
    BACKEND_NEED(be, batchnorm_forward);
    if (training && (long)n * hw < 2)
        return err_set("batchnorm: training needs more than 1 value per channel");
    return be->iface->batchnorm_forward(be, out, mean, rstd, in, gamma, beta, run_mean, run_var, n, c, hw,
                                        training, momentum, eps);
}

int batchnorm_backward(backend_t be, float *din, float *dgamma, float *dbeta, const float *dout,
                       const float *in, const float *mean, const float *rstd, const float *gamma, int n,
                       int c, int hw, int training)
{
    BACKEND_NEED(be, batchnorm_backward);
    return be->iface->batchnorm_backward(be, din, dgamma, dbeta, dout, in, mean, rstd, gamma, n, c, hw,
                                         training);
}

int instnorm_forward(backend_t be, float *out, float *mean, float *rstd, const float *in, int planes, int hw,
                     double eps)
{
    BACKEND_NEED(be, instnorm_forward);
    return be->iface->instnorm_forward(be, out, mean, rstd, in, planes, hw, eps);
}

int instnorm_backward(backend_t be, float *din, const float *dout, const float *in, const float *mean,
                      const float *rstd, int planes, int hw)
{
    BACKEND_NEED(be, instnorm_backward);
    return be->iface->instnorm_backward(be, din, dout, in, mean, rstd, planes, hw);
}

int act_forward(backend_t be, float *out, const float *in, long n, enum act_kind kind)
{
    BACKEND_NEED(be, act_forward);
    return be->iface->act_forward(be, out, in, n, kind);
}

int act_backward(backend_t be, float *din, const float *dout, const float *out, long n, enum act_kind kind)
{
    BACKEND_NEED(be, act_backward);
    return be->iface->act_backward(be, din, dout, out, n, kind);
}

// ---- reductions, losses, elementwise

int mean_forward(backend_t be, float *out, const float *in, int n, long m)
{
    BACKEND_NEED(be, mean_forward);
    return be->iface->mean_forward(be, out, in, n, m);
}

int mean_backward(backend_t be, float *din, const float *dout, int n, long m)
{
    BACKEND_NEED(be, mean_backward);
    return be->iface->mean_backward(be, din, dout, n, m);
}

int loss_forward(backend_t be, float *out, const float *x, const float *target, float target_value, long n,
                 enum loss_kind kind)
{
    BACKEND_NEED(be, loss_forward);
    if (n < 1)
        return err_set("loss: empty input");
    return be->iface->loss_forward(be, out, x, target, target_value, n, kind);
}

int loss_backward(backend_t be, float *dx, const float *x, const float *target, float target_value,
                  float scale, long n, enum loss_kind kind)
{
    BACKEND_NEED(be, loss_backward);
    if (n < 1)
        return err_set("loss: empty input");
    return be->iface->loss_backward(be, dx, x, target, target_value, scale, n, kind);
}

int tensor_axpy(backend_t be, float *y, float a, const float *x, long n)
{
    BACKEND_NEED(be, axpy);
    return be->iface->axpy(be, y, a, x, n);
}

int tensor_scale(backend_t be, float *x, float a, long n)
{
    BACKEND_NEED(be, scale);
    return be->iface->scale(be, x, a, n);
}

// ---- backend.h verbs that go through the vtable

const char *backend_name(backend_t be)
{
    return be ? be->iface->name : "none";
}

int backend_supports(backend_t be, enum backend_op op)
{
    if (!be)
        return 0;
    const struct backend_iface *i = be->iface;
    switch (op) {
    case BACKEND_OP_CONV2D: return i->conv2d_forward && i->conv2d_backward;
    case BACKEND_OP_CONVT2D: return i->convt2d_forward && i->convt2d_backward;
    case BACKEND_OP_REFLPAD: return i->reflpad_forward && i->reflpad_backward;
    case BACKEND_OP_BATCHNORM: return i->batchnorm_forward && i->batchnorm_backward;
    case BACKEND_OP_INSTNORM: return i->instnorm_forward && i->instnorm_backward;
    case BACKEND_OP_ACT: return i->act_forward && i->act_backward;
    case BACKEND_OP_MEAN: return i->mean_forward && i->mean_backward;
    case BACKEND_OP_LOSS: return i->loss_forward && i->loss_backward;
    }
    return 0;
}

void backend_free(backend_t be)
{
    if (be)
        be->iface->free(be);
}

void *backend_alloc(backend_t be, size_t bytes)
{
    if (!be)
        return NULL;
    void *p = be->iface->alloc(be, bytes);
    if (p)
        be->allocs++;
    return p;
}

long backend_allocations(backend_t be)
{
    return be ? be->allocs : 0;
}

void backend_dealloc(backend_t be, void *p)
{
    if (be && p)
        be->iface->dealloc(be, p);
}

int backend_upload(backend_t be, void *dst, const void *src, size_t bytes)
{
    BACKEND_NEED(be, upload);
    return be->iface->upload(be, dst, src, bytes);
}

int backend_download(backend_t be, void *dst, const void *src, size_t bytes)
{
    BACKEND_NEED(be, download);
    return be->iface->download(be, dst, src, bytes);
}

int backend_copy(backend_t be, void *dst, const void *src, size_t bytes)
{
    BACKEND_NEED(be, copy);
    return be->iface->copy(be, dst, src, bytes);
}

int backend_zero(backend_t be, void *dst, size_t bytes)
{
    BACKEND_NEED(be, zero);
    return be->iface->zero(be, dst, bytes);
}

int backend_synchronize(backend_t be)
{
    if (!be)
        return err_set("backend_synchronize: no backend");
    return be->iface->synchronize ? be->iface->synchronize(be) : 0;
}

int backend_reserve(backend_t be, size_t bytes)
{
    BACKEND_NEED(be, reserve);
    if (!bytes) /* nothing to reserve (a backend that sizes its workspace on first use) */
        return 0;
    return be->iface->reserve(be, bytes);
}

// ---- precision (backend.h)

static const char *const precision_names[] = {"fp32", "bf16", "fp16"};

const char *backend_precision_name(enum backend_precision p)
{
    return (unsigned)p < 3 ? precision_names[p] : "?";
}

int backend_precision_parse(const char *name, enum backend_precision *p)
{
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, precision_names[i]) == 0) {
            *p = (enum backend_precision)i;
            return 0;
        }
    return -1;
}

int backend_set_precision(backend_t be, enum backend_precision p)
{
    if (!be)
        return err_set("backend_set_precision: no backend");
    if ((unsigned)p > BACKEND_FP16)
        return err_set("backend_set_precision: bad precision %d", (int)p);
    be->precision = p;
    return 0;
}

enum backend_precision backend_get_precision(backend_t be)
{
    return be ? be->precision : BACKEND_FP32;
}
