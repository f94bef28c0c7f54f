/*
 * backend: where tensors live and ops run.  A backend_t is an opaque handle;
 * the ops themselves are reached through lib/layers.h (written once against
 * the private vtable in lib/backend-impl.h).  The CPU backend (OpenBLAS GEMM
 * + OpenMP) is always built and is the reference for the others.
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
