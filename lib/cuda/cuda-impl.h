/*
 * cuda-impl: what the files of the CUDA backend share (the .cu files in lib/cuda, built
 * by nvcc into build/libaging-cuda.so and loaded at run time by
 * lib/tool/device.c, so the tools run on machines without CUDA libraries).
 *
 * One struct cuda_ctx per backend_t (be->context): the device, one stream
 * on which every op is queued in order, the cuDNN handle bound to that
 * stream, and one scratch workspace shared by all ops.  Ops never
 * allocate once warm: the workspace only grows (cuda_ws), and each op's
 * first call with a new shape may grow it (the backend has no
 * conv2d_workspace entry: a cuDNN plan knows its workspace once chosen, so
 * model building reserves nothing and the first step grows it).
 *
 * Every op follows lib/backend/backend-impl.h exactly (layouts NCHW/OIHW/IOHW, din
 * overwritten, parameter gradients accumulated) and returns 0, or -1 after
 * err_set() (resolved from the executable that loaded us, which links with
 * -rdynamic).  Launch errors are checked with cudaGetLastError after each
 * launch; asynchronous faults surface at the next synchronising call.
 *
 * Precision (be->precision): BACKEND_FP32 runs everything in float with
 * FMA math (no TF32), so results track the CPU backend closely.  With
 * BACKEND_BF16 / BACKEND_FP16 the convolutions (forward, backward-data,
 * backward-filter, transposed) run on tensor cores: inputs, weights and
 * output gradients are rounded to the 16-bit type (and transposed to NHWC
 * in the same pass), cuDNN accumulates in float, and the result is rounded
 * to the 16-bit type before it is widened back to float (bias added after,
 * in float).  That is the contract of lib/backend/backend.h, which the CPU backend
 * emulates bit for bit in its rounding (not in its summation order).
 * Everything else (norms, activations, losses, optimiser) stays float.
 */
#pragma once

#include <cuda_runtime.h>
#include <cudnn.h>
#include <stddef.h>

extern "C" {
#include "backend/backend-impl.h"
#include "base/err.h"
}

struct cuda_conv_cache; /* conv.cu: algorithms chosen per shape */
struct cuda_clip_cache; /* clip.cu: segment tables of the gradient slabs */

struct cuda_ctx {
    int device;
    cudaStream_t stream;
    cudnnHandle_t cudnn;
    void *ws; /* shared scratch, grown only */
    size_t ws_bytes;
    struct cuda_conv_cache *convs;
    struct cuda_clip_cache *clips;
    double *dsum; /* device accumulators of sumsq (count doubles) */
    double *hsum; /* pinned host copy of them */
    int sum_cap;  /* doubles in dsum / hsum */
    int sm_count; /* multiprocessors: sizes grid-stride launches */
};

static inline struct cuda_ctx *cuda_ctx_of(struct backend *be)
{
    return (struct cuda_ctx *)be->context;
}

/* The scratch workspace, at least `bytes` long (grown, after a device-wide
 * synchronisation, when smaller).  NULL + err_set on failure. */
void *cuda_ws(struct backend *be, size_t bytes);

/* err_set("cuda: <what>: <CUDA error string>") and -1, when e is an error. */
int cuda_check(cudaError_t e, const char *what);
int cudnn_check(cudnnStatus_t s, const char *what);
/* cuda_check(cudaGetLastError()) after a kernel launch. */
int cuda_launched(const char *what);

#define CU_TRY(call)                                                                                         \
    do {                                                                                                     \
        if (cuda_check((call), #call))                                                                       \
            return -1;                                                                                       \
    } while (0)
#define DNN_TRY(call)                                                                                        \
    do {                                                                                                     \
        if (cudnn_check((call), #call))                                                                      \
            return -1;                                                                                       \
    } while (0)

/* Blocks for a grid-stride loop over n elements with `threads` per block:
 * enough to fill the GPU a few times over, never more than n needs. */
static inline int cuda_blocks(struct backend *be, long n, int threads)
{
    long need = (n + threads - 1) / threads;
    long cap = (long)cuda_ctx_of(be)->sm_count * 8;
    if (cap < 1)
        cap = 1;
    return (int)(need < cap ? (need > 0 ? need : 1) : cap);
}

// ---- the ops, one file each; signatures as struct backend_iface

/* conv.cu */
int cu_conv2d_forward(struct backend *be, float *out, const float *in, const float *w, const float *b,
                      const struct conv_shape *s);
int cu_conv2d_backward(struct backend *be, float *din, float *dw, float *db, const float *dout,
                       const float *in, const float *w, const struct conv_shape *s);
int cu_convt2d_forward(struct backend *be, float *out, const float *in, const float *w, const float *b,
                       const struct conv_shape *s);
int cu_convt2d_backward(struct backend *be, float *din, float *dw, float *db, const float *dout,
                        const float *in, const float *w, const struct conv_shape *s);
void cu_conv_cache_free(struct cuda_conv_cache *c);
/* conv-ex.cu (Inception) */
size_t cu_conv_ex_workspace(struct backend *be, const struct conv_ex_shape *s);
int cu_conv_ex_forward(struct backend *be, float *out, const float *in, const float *w, const float *b,
                       const struct conv_ex_shape *s, float *ws);
/* bias.cu: out[n,c,hw] += b[c]; db[c] += sum over n,hw of dout */
int cu_add_bias(struct backend *be, float *out, const float *b, int n, int c, long hw);
int cu_sum_bias(struct backend *be, float *db, const float *dout, int n, int c, long hw);
/* cast.cu: float NCHW <-> 16-bit NHWC (or plain, when nhwc is 0) */
int cu_to_half(struct backend *be, void *dst, const float *src, int n, int c, long hw, int nhwc);
int cu_from_half(struct backend *be, float *dst, const void *src, int n, int c, long hw, int nhwc,
                 float beta);
/* reflpad.cu */
int cu_reflpad_forward(struct backend *be, float *out, const float *in, int planes, int h, int w, int pad);
int cu_reflpad_backward(struct backend *be, float *din, const float *dout, int planes, int h, int w, int pad);
/* batchnorm.cu */
int cu_batchnorm_forward(struct backend *be, float *out, float *mean, float *rstd, const float *in,
                         const float *gamma, const float *beta, float *run_mean, float *run_var, int n, int c,
                         int hw, int training, double momentum, double eps);
int cu_batchnorm_backward(struct backend *be, float *din, float *dgamma, float *dbeta, const float *dout,
                          const float *in, const float *mean, const float *rstd, const float *gamma, int n,
                          int c, int hw, int training);
/* instnorm.cu */
int cu_instnorm_forward(struct backend *be, float *out, float *mean, float *rstd, const float *in, int planes,
                        int hw, double eps);
int cu_instnorm_backward(struct backend *be, float *din, const float *dout, const float *in,
                         const float *mean, const float *rstd, int planes, int hw);
/* act.cu */
int cu_act_forward(struct backend *be, float *out, const float *in, long n, enum act_kind kind);
int cu_act_backward(struct backend *be, float *din, const float *dout, const float *out, long n,
                    enum act_kind kind);
/* loss.cu: mean rows, MSE/L1 losses, axpy, scale */
int cu_mean_forward(struct backend *be, float *out, const float *in, int n, long m);
int cu_mean_backward(struct backend *be, float *din, const float *dout, int n, long m);
int cu_loss_forward(struct backend *be, float *out, const float *x, const float *target, float target_value,
                    long n, enum loss_kind kind);
int cu_loss_backward(struct backend *be, float *dx, const float *x, const float *target, float target_value,
                     float scale, long n, enum loss_kind kind);
int cu_axpy(struct backend *be, float *y, float a, const float *x, long n);
int cu_scale(struct backend *be, float *x, float a, long n);
/* adam.cu: Adam and the sums of squares of clip_grad_norm */
int cu_adam_step(struct backend *be, float *param, const float *grad, float *exp_avg, float *exp_avg_sq,
                 long n, double lr, double beta1, double beta2, double eps, double weight_decay, long step);
int cu_sumsq(struct backend *be, double *out, const float *x, const long *sizes, int count);
/* The two launches of cu_sumsq with the tables already on the device:
 * sums[r] (device) = run r's sum of squares; part: nseg doubles of scratch. */
int cu_sumsq_dev(struct backend *be, double *sums, double *part, const float *x, const long *d_run_off,
                 const long *d_seg_first, int count, long nseg);
/* clip.cu: clip_grad_norm_dev without the host (lib/nn/optim.h) */
int cu_clip_norm(struct backend *be, const struct grad_slab *slabs, int nslabs, double max_norm,
                 float *norm_dev);
void cu_clip_cache_free(struct cuda_clip_cache *c);
/* pool.cu, resize.cu (Inception) */
int cu_pool2d_forward(struct backend *be, float *out, const float *in, const struct pool_shape *s);
int cu_resize_bilinear(struct backend *be, float *out, const float *in, int planes, int h, int w, int hout,
                       int wout, enum resize_mode mode, float mul, float add);
