/*
 * cpu-dnnl: the CPU backend's bf16 convolutions on oneDNN (Debian's
 * libdnnl), which runs them on the CPU's bf16 units: AMX tiles or
 * AVX512-BF16 dot products (vdpbf16ps), products summed in float.
 *
 * The contract is backend.h's BF16 precision, the one the emulation in
 * lib/cpu/backend-cpu-half.c implements: inputs, weights and output gradients
 * are rounded to bf16 (round to nearest even, in oneDNN's reorders), the
 * result (output, input gradient, the call's weight gradient) is rounded to
 * bf16, biases are added and reduced in float.  Only the order of the float
 * sums differs from the emulation.
 *
 * Our tensors stay float NCHW (weights OIHW, transposed-convolution weights
 * IOHW); each call reorders them into the blocked bf16 layouts oneDNN's
 * kernels want and the result back, and that cost is part of every timing.
 * Primitives and their reorders are built once per (operation, shape,
 * precision) and cached; their bf16 buffers and scratchpads live in one
 * grow-only arena.  So a shape's first call allocates (backend_allocations
 * counts it) and later calls do not.  One struct cpu_dnnl serves one caller
 * thread at a time (as a backend does); separate ones run concurrently.
 *
 * BACKEND_FP32 is accepted too, so that bench/conv_engines.c can measure
 * oneDNN's float kernels against ours; the backend itself only sends BF16.
 */
#pragma once

#include "backend/backend.h"

struct conv_shape;
struct cpu_dnnl;

/* 1 when bf16 convolutions should run here: oneDNN finds AVX512-BF16 or AMX
 * (its ONEDNN_MAX_CPU_ISA caps what it finds) and AGING_CPU_BF16 is not "0"
 * in the environment (the switch that forces the emulation, for tests). */
int cpu_dnnl_bf16_available(void);
/* The ISA oneDNN dispatches to, in words ("AVX512-BF16", "AMX", ...). */
const char *cpu_dnnl_isa_name(void);

/* A cache of primitives; NULL + err_set on failure.  Each primitive
 * creation and arena growth adds 1 to *allocs (the backend's
 * backend_allocations counter).  NULL-safe free. */
struct cpu_dnnl *cpu_dnnl_new(long *allocs);
void cpu_dnnl_free(struct cpu_dnnl *d);

/* The four convolution operations of lib/backend/layers.h, same arguments and
 * conventions (din overwritten and may be NULL, dw and db accumulated and
 * may be NULL), at precision p (BACKEND_BF16 or BACKEND_FP32).  0, or -1 +
 * err_set (e.g. a shape oneDNN rejects: the caller may fall back). */
int cpu_dnnl_conv2d_forward(struct cpu_dnnl *d, enum backend_precision p, float *out, const float *in,
                            const float *w, const float *b, const struct conv_shape *s);
int cpu_dnnl_conv2d_backward(struct cpu_dnnl *d, enum backend_precision p, float *din, float *dw, float *db,
                             const float *dout, const float *in, const float *w, const struct conv_shape *s);
int cpu_dnnl_convt2d_forward(struct cpu_dnnl *d, enum backend_precision p, float *out, const float *in,
                             const float *w, const float *b, const struct conv_shape *s);
int cpu_dnnl_convt2d_backward(struct cpu_dnnl *d, enum backend_precision p, float *din, float *dw, float *db,
                              const float *dout, const float *in, const float *w, const struct conv_shape *s);
