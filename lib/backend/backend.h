/*
 * backend: where tensors live and ops run.  A backend_t is an opaque handle;
 * the ops themselves are reached through lib/backend/layers.h (written once against
 * the private vtable in lib/backend/backend-impl.h).  The CPU backend (lib/cpu/: its
 * own vector GEMMs, oneDNN for bf16, OpenMP) is always built and is the
 * reference for the others.
 *
 *   backend_t be = backend_cpu_init();
 *   float *x = backend_alloc(be, n * sizeof(float));   // zeroed, device memory
 *   backend_upload(be, x, host, n * sizeof(float));
 *   ...
 *   backend_dealloc(be, x);
 *   backend_free(be);
 *
 * All pointers handed to layer ops are device pointers from backend_alloc
 * (on the CPU backend: ordinary host memory, so any float array works).
 * A backend is not thread-safe: one caller thread issues ops in order.
 */
#pragma once

#include <stddef.h>

typedef struct backend *backend_t;

/* Ops a backend may or may not implement (backend_supports). */
enum backend_op {
    BACKEND_OP_CONV2D,
    BACKEND_OP_CONVT2D,
    BACKEND_OP_REFLPAD,
    BACKEND_OP_BATCHNORM,
    BACKEND_OP_INSTNORM,
    BACKEND_OP_ACT,
    BACKEND_OP_MEAN,
    BACKEND_OP_LOSS,
};

/* Arithmetic of the convolutions (every other op computes in float).
 * FP32: float throughout.  BF16 / FP16 (mixed precision, as PyTorch's
 * autocast): a convolution's inputs, weights and output gradients are
 * rounded to the 16-bit type (round to nearest even), products are summed
 * in float, and the result (output, input gradient, or the call's weight
 * gradient before it is accumulated) is rounded to the 16-bit type again;
 * biases are added and reduced in float.  FP16 overflow gives inf, which
 * the trainer's loss scaling detects.  The CUDA backend runs these on
 * tensor cores; the CPU backend emulates the rounding (slowly), so the two
 * can be compared and the loss scaling tested anywhere. */
enum backend_precision {
    BACKEND_FP32,
    BACKEND_BF16,
    BACKEND_FP16,
};

/* "fp32", "bf16", "fp16" <-> the enum; parse returns -1 on other names. */
const char *backend_precision_name(enum backend_precision p);
int backend_precision_parse(const char *name, enum backend_precision *p);
/* Every backend supports every precision; 0, or -1 on a bad value. */
int backend_set_precision(backend_t be, enum backend_precision p);
enum backend_precision backend_get_precision(backend_t be);

/* The CPU backend.  Caller owns the handle (backend_free).  NULL on failure. */
backend_t backend_cpu_init(void);
/* NULL-safe; frees the backend's own workspace, not tensors allocated from it. */
void backend_free(backend_t be);
/* "cpu", "cuda", ... */
const char *backend_name(backend_t be);
int backend_supports(backend_t be, enum backend_op op);

/* Zero-filled device memory, 64-byte aligned; NULL (+err_set) on failure.
 * Caller frees with backend_dealloc (NULL-safe). */
void *backend_alloc(backend_t be, size_t bytes);
void backend_dealloc(backend_t be, void *p);
/* Host <-> device copies and device fills.  0 on success, -1 + err_set. */
int backend_upload(backend_t be, void *dst_dev, const void *src_host, size_t bytes);
int backend_download(backend_t be, void *dst_host, const void *src_dev, size_t bytes);
int backend_copy(backend_t be, void *dst_dev, const void *src_dev, size_t bytes);
int backend_zero(backend_t be, void *dst_dev, size_t bytes);
/* Wait for queued work (no-op on the CPU). */
int backend_synchronize(backend_t be);
/* Make sure the shared scratch workspace holds at least `bytes`, so that no
 * op allocates later.  Models call it at build time with their largest need. */
int backend_reserve(backend_t be, size_t bytes);
/* How many times this backend has allocated memory so far: backend_alloc
 * calls plus every growth of its internal scratch (workspace, 16-bit
 * copies, reduction buffers).  A training step that allocates nothing
 * leaves it unchanged (what the tests check after a warm-up step). */
long backend_allocations(backend_t be);
