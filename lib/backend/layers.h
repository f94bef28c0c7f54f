/*
 * layers: the ops of the CycleGAN networks, forward and backward, each a
 * thin checked dispatch through the backend vtable (lib/backend/backend-impl.h), so
 * models are written once for every backend.  Shapes are PyTorch's:
 * activations NCHW, Conv2d weights OIHW [Cout,Cin,k,k], ConvTranspose2d
 * weights IOHW [Cin,Cout,k,k].  All pointers are device pointers.
 *
 * Gradient conventions (all ops):
 *   - the input gradient `din` is OVERWRITTEN; pass NULL to skip it where
 *     documented (convs: saves a GEMM);
 *   - parameter gradients (dw, db, dgamma, dbeta) are ACCUMULATED (+=), so a
 *     layer used by several calls sums its gradients like PyTorch autograd.
 * Every op returns 0, or -1 with err_set() on bad arguments or failure.
 */
#pragma once

#include <stddef.h>

typedef struct backend *backend_t;

// ----------------------------------------------------------------------------
// Convolutions

/* One convolution's geometry.  For conv2d: input [n,cin,h,w] -> output
 * [n,cout,hout,wout], zero padding `pad`, square kernel k.  For convt2d the
 * same names mean the transposed op: input [n,cin,h,w] -> output
 * [n,cout,hout,wout] with hout = (h-1)*stride - 2*pad + k + out_pad. */
struct conv_shape {
    int n, cin, h, w;
    int cout, hout, wout;
    int k, stride, pad, out_pad; /* out_pad: convt2d only (0 for conv2d) */
};

/* Fill hout/wout of a conv2d (out_pad ignored) or convt2d.  -1 if < 1. */
int conv2d_shape(struct conv_shape *s, int n, int cin, int h, int w, int cout, int k, int stride, int pad);
int convt2d_shape(struct conv_shape *s, int n, int cin, int h, int w, int cout, int k, int stride, int pad,
                  int out_pad);
/* Bytes of workspace one call needs on this backend (pass to
 * backend_reserve); 0 when the backend sizes it on first use. */
size_t conv2d_workspace_bytes(backend_t be, const struct conv_shape *s);
size_t convt2d_workspace_bytes(backend_t be, const struct conv_shape *s);

/* out [n,cout,hout,wout] = conv(in [n,cin,h,w], w [cout,cin,k,k]) + b [cout]
 * (b may be NULL). */
int conv2d_forward(backend_t be, float *out, const float *in, const float *w, const float *b,
                   const struct conv_shape *s);
/* din [n,cin,h,w] (overwritten, may be NULL); dw [cout,cin,k,k] +=;
 * db [cout] += (may be NULL); dout [n,cout,hout,wout]; in, w as forward. */
int conv2d_backward(backend_t be, float *din, float *dw, float *db, const float *dout, const float *in,
                    const float *w, const struct conv_shape *s);
/* out [n,cout,hout,wout] = conv_transpose(in [n,cin,h,w], w [cin,cout,k,k]) + b [cout]. */
int convt2d_forward(backend_t be, float *out, const float *in, const float *w, const float *b,
                    const struct conv_shape *s);
/* din [n,cin,h,w] (overwritten, may be NULL); dw [cin,cout,k,k] +=; db [cout] +=. */
int convt2d_backward(backend_t be, float *din, float *dw, float *db, const float *dout, const float *in,
                     const float *w, const struct conv_shape *s);

// ----------------------------------------------------------------------------
// Reflection padding: in [planes,h,w] -> out [planes,h+2p,w+2p] (planes = N*C,
// p < h and p < w as PyTorch requires).  Backward: din [planes,h,w] = sum of
// the dout entries that copied each input pixel.

int reflpad_forward(backend_t be, float *out, const float *in, int planes, int h, int w, int pad);
int reflpad_backward(backend_t be, float *din, const float *dout, int planes, int h, int w, int pad);

// ----------------------------------------------------------------------------
// BatchNorm2d over in/out [n,c,hw].  training=1: normalise with the batch
// statistics (biased variance), write them to mean [c] / rstd [c] (= 1/sqrt(
// var+eps)), and update run_mean/run_var [c] in place with `momentum` (running
// variance is the UNBIASED one, as PyTorch).  training=0: normalise with the
// running statistics, which are copied to mean/rstd for the backward.
// The caller counts num_batches_tracked (a host integer).

#define BN_EPS      1e-5 /* PyTorch's eps and momentum, as doubles like PyTorch */
#define BN_MOMENTUM 0.1

int batchnorm_forward(backend_t be, float *out, float *mean, float *rstd, const float *in, const float *gamma,
                      const float *beta, float *run_mean, float *run_var, int n, int c, int hw, int training,
                      double momentum, double eps);
/* din [n,c,hw] (overwritten); dgamma, dbeta [c] +=; in, mean, rstd, gamma as
 * saved by the forward with the same `training`. */
int batchnorm_backward(backend_t be, float *din, float *dgamma, float *dbeta, const float *dout,
                       const float *in, const float *mean, const float *rstd, const float *gamma, int n,
                       int c, int hw, int training);

// InstanceNorm2d without affine or running stats: each of `planes` (= N*C)
// planes of hw values is normalised by its own mean and biased variance.
// mean/rstd [planes] are saved for the backward.
int instnorm_forward(backend_t be, float *out, float *mean, float *rstd, const float *in, int planes, int hw,
                     double eps);
int instnorm_backward(backend_t be, float *din, const float *dout, const float *in, const float *mean,
                      const float *rstd, int planes, int hw);

// ----------------------------------------------------------------------------
// Elementwise activations.  Backward works from the forward OUTPUT, so every
// one may run in place (out == in, din == dout).

enum act_kind {
    ACT_RELU,
    ACT_LRELU, /* LeakyReLU, negative slope 0.2 */
    ACT_TANH,
};
#define ACT_LRELU_SLOPE 0.2f

int act_forward(backend_t be, float *out, const float *in, long n, enum act_kind kind);
int act_backward(backend_t be, float *din, const float *dout, const float *out, long n, enum act_kind kind);

// ----------------------------------------------------------------------------
// Reductions and losses

/* out [n] = mean of each of the n rows of in [n,m] (the PatchGAN logit:
 * mean over the [1,h,w] patch map).  Backward: din [n,m] = dout[i]/m. */
int mean_forward(backend_t be, float *out, const float *in, int n, long m);
int mean_backward(backend_t be, float *din, const float *dout, int n, long m);

enum loss_kind {
    LOSS_MSE, /* mean((x-t)^2) */
    LOSS_L1,  /* mean(|x-t|) */
};
/* out [1] (device) = loss of x [n] against target [n], or against the
 * constant target_value when target is NULL. */
int loss_forward(backend_t be, float *out, const float *x, const float *target, float target_value, long n,
                 enum loss_kind kind);
/* dx [n] += scale * d loss / dx  (ACCUMULATED, like a parameter gradient, since
 * the prediction usually also receives other gradients).  L1 uses sign(0)=0. */
int loss_backward(backend_t be, float *dx, const float *x, const float *target, float target_value,
                  float scale, long n, enum loss_kind kind);

/* y [n] += a * x [n]. */
int tensor_axpy(backend_t be, float *y, float a, const float *x, long n);
/* x [n] *= a. */
int tensor_scale(backend_t be, float *x, float a, long n);

/* One gradient slab seen as torch's list of p.grad: `count` tensors of
 * sizes[i] floats each, back to back from `grad` (device).  What
 * clip_grad_norm (lib/nn/optim.h) and the backends' clip_norm entry take. */
struct grad_slab {
    float *grad;
    const long *sizes;
    int count;
};
