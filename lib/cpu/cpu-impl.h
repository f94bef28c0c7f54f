/*
 * cpu-impl: what the files of the CPU backend (lib/cpu/) call in each other,
 * beside the generic vtable (lib/backend/backend-impl.h) that every backend
 * fills.  Nothing outside lib/cpu/ includes it.
 */
#pragma once

#include <stddef.h>

#include "backend/backend-impl.h"

/* Workspace bytes of the CPU backend's conv2d / convt2d forward and backward
 * for this shape (lib/cpu/backend-cpu-conv.c, as are its conv2d_workspace
 * and convt2d_workspace entries): the GEMMs' scratch (and the col buffer of the
 * paths that still fold with col2im) when cpu_gemm_available(), the im2col
 * matrix of the OpenBLAS path otherwise. */
size_t cpu_conv2d_ws_bytes(const struct conv_shape *s);
size_t cpu_convt2d_ws_bytes(const struct conv_shape *s);
size_t cpu_conv2d_workspace(struct backend *be, const struct conv_shape *s);
size_t cpu_convt2d_workspace(struct backend *be, const struct conv_shape *s);
/* The convolutions' scratch, grown to at least `bytes` (lib/cpu/backend-cpu.c);
 * NULL + err_set on failure. */
float *cpu_ws(struct backend *be, size_t bytes);

/* The CPU backend's float convolutions (lib/cpu/backend-cpu-conv.c), the dispatchers
 * in its vtable that run bf16 on the CPU's bf16 units or emulate 16-bit
 * precision around the float ones when be->precision asks for it
 * (lib/cpu/backend-cpu-half.c), and the grow-only scratch the emulation
 * rounds copies into.  (Their bias helpers are in cpu-gemm.h.) */
int cpu_conv2d_forward_f32(struct backend *be, float *out, const float *in, const float *w, const float *b,
                           const struct conv_shape *s);
int cpu_conv2d_backward_f32(struct backend *be, float *din, float *dw, float *db, const float *dout,
                            const float *in, const float *w, const struct conv_shape *s);
int cpu_convt2d_forward_f32(struct backend *be, float *out, const float *in, const float *w, const float *b,
                            const struct conv_shape *s);
int cpu_convt2d_backward_f32(struct backend *be, float *din, float *dw, float *db, const float *dout,
                             const float *in, const float *w, const struct conv_shape *s);
int cpu_conv2d_forward(struct backend *be, float *out, const float *in, const float *w, const float *b,
                       const struct conv_shape *s);
int cpu_conv2d_backward(struct backend *be, float *din, float *dw, float *db, const float *dout,
                        const float *in, const float *w, const struct conv_shape *s);
int cpu_convt2d_forward(struct backend *be, float *out, const float *in, const float *w, const float *b,
                        const struct conv_shape *s);
int cpu_convt2d_backward(struct backend *be, float *din, float *dw, float *db, const float *dout,
                         const float *in, const float *w, const struct conv_shape *s);
/* At least `floats` floats, kept by the backend; NULL + err_set on failure. */
float *cpu_half_scratch(struct backend *be, size_t floats);
/* The backend's oneDNN primitives (lib/cpu/cpu-dnnl.h), made on first use;
 * NULL + err_set on failure. */
struct cpu_dnnl *cpu_dnnl_of(struct backend *be);

/* The CPU backend's optimiser ops (lib/cpu/backend-cpu-optim.c). */
int cpu_adam_step(struct backend *be, float *param, const float *grad, float *exp_avg, float *exp_avg_sq,
                  long n, double lr, double beta1, double beta2, double eps, double weight_decay, long step);
int cpu_sumsq(struct backend *be, double *out, const float *x, const long *sizes, int count);
int cpu_scale(struct backend *be, float *x, float a, long n);

/* The CPU backend's Inception ops (lib/cpu/backend-cpu-pool.c). */
size_t cpu_conv_ex_workspace(struct backend *be, const struct conv_ex_shape *s);
int cpu_conv_ex_forward(struct backend *be, float *out, const float *in, const float *w, const float *b,
                        const struct conv_ex_shape *s, float *ws);
int cpu_pool2d_forward(struct backend *be, float *out, const float *in, const struct pool_shape *s);
int cpu_resize_bilinear(struct backend *be, float *out, const float *in, int planes, int h, int w, int hout,
                        int wout, enum resize_mode mode, float mul, float add);

/* The CPU backend's norms (lib/cpu/backend-cpu-norm.c). */
int cpu_batchnorm_forward(struct backend *be, float *out, float *mean, float *rstd, const float *in,
                          const float *gamma, const float *beta, float *run_mean, float *run_var, int n,
                          int c, int hw, int training, double momentum, double eps);
int cpu_batchnorm_backward(struct backend *be, float *din, float *dgamma, float *dbeta, const float *dout,
                           const float *in, const float *mean, const float *rstd, const float *gamma, int n,
                           int c, int hw, int training);
int cpu_instnorm_forward(struct backend *be, float *out, float *mean, float *rstd, const float *in,
                         int planes, int hw, double eps);
int cpu_instnorm_backward(struct backend *be, float *din, const float *dout, const float *in,
                          const float *mean, const float *rstd, int planes, int hw);
