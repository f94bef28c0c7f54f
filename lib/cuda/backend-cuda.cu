/*
 * backend-cuda: the CUDA backend's handle, memory and vtable.  This is the
 * one file of build/libaging-cuda.so that lib/tool/device.c talks to: it exports
 * backend_cuda_device_count() and backend_cuda_open() with C linkage and
 * nothing else; the ops live one per file beside it (cuda-impl.h).
 *
 * All work is queued on one non-blocking stream, so the legacy default
 * stream never serialises us against other libraries.  Uploads from
 * pageable memory return once the host buffer has been staged (CUDA's
 * documented behaviour), so callers may reuse it at once; downloads wait
 * for the stream, since the caller reads the result next.
 */
#include "cuda-impl.h"

#include <stdlib.h>

// ----------------------------------------------------------------------------
// errors

int cuda_check(cudaError_t e, const char *what)
{
    if (e == cudaSuccess)
        return 0;
    return err_set("cuda: %s: %s", what, cudaGetErrorString(e));
}

int cudnn_check(cudnnStatus_t s, const char *what)
{
    if (s == CUDNN_STATUS_SUCCESS)
        return 0;
    return err_set("cuda: %s: %s", what, cudnnGetErrorString(s));
}

int cuda_launched(const char *what)
{
    return cuda_check(cudaGetLastError(), what);
}

// ----------------------------------------------------------------------------
// memory

/* Growth frees the old buffer, so queued work that still reads it must have
 * finished: synchronise first.  Grows by a quarter more than asked, so a
 * run of slightly larger shapes does not reallocate each time. */
void *cuda_ws(struct backend *be, size_t bytes)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    if (bytes <= c->ws_bytes)
        return c->ws;
    size_t want = bytes + bytes / 4;
    if (cuda_check(cudaStreamSynchronize(c->stream), "workspace: synchronize"))
        return NULL;
    if (c->ws)
        cudaFree(c->ws);
    c->ws = NULL;
    c->ws_bytes = 0;
    /* the quarter more is a convenience: when it does not fit, take exactly
     * what was asked.  A failed cudaMalloc also records itself as the
     * thread's last error, which the next launch check (cuda_launched)
     * would report against an unrelated kernel: clear it. */
    if (cudaMalloc(&c->ws, want) != cudaSuccess) {
        cudaGetLastError();
        c->ws = NULL;
        want = bytes;
        if (cuda_check(cudaMalloc(&c->ws, want), "workspace: cudaMalloc")) {
            cudaGetLastError();
            c->ws = NULL;
            return NULL;
        }
    }
    c->ws_bytes = want;
    be->allocs++;
    return c->ws;
}

static void *cu_alloc(struct backend *be, size_t bytes)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    void *p = NULL;
    size_t n = bytes ? bytes : 1;
    if (cudaMalloc(&p, n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky-free error so later calls work */
        err_set("cuda: out of device memory allocating %zu bytes", bytes);
        return NULL;
    }
    if (cuda_check(cudaMemsetAsync(p, 0, n, c->stream), "alloc: memset")) {
        cudaFree(p);
        return NULL;
    }
    return p;
}

static void cu_dealloc(struct backend *be, void *p)
{
    /* cudaFree waits for the device, so queued work reading p completes first */
    (void)be;
    cudaFree(p);
}

static int cu_upload(struct backend *be, void *dst, const void *src, size_t bytes)
{
    if (!bytes)
        return 0;
    return cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cuda_ctx_of(be)->stream),
                      "upload");
}

static int cu_download(struct backend *be, void *dst, const void *src, size_t bytes)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    if (!bytes)
        return 0;
    CU_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream));
    return cuda_check(cudaStreamSynchronize(c->stream), "download: synchronize");
}

static int cu_copy(struct backend *be, void *dst, const void *src, size_t bytes)
{
    if (!bytes || dst == src)
        return 0;
    return cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cuda_ctx_of(be)->stream),
                      "copy");
}

static int cu_zero(struct backend *be, void *dst, size_t bytes)
{
    if (!bytes)
        return 0;
    return cuda_check(cudaMemsetAsync(dst, 0, bytes, cuda_ctx_of(be)->stream), "zero");
}

static int cu_synchronize(struct backend *be)
{
    return cuda_check(cudaStreamSynchronize(cuda_ctx_of(be)->stream), "synchronize");
}

static int cu_reserve(struct backend *be, size_t bytes)
{
    return cuda_ws(be, bytes) ? 0 : -1;
}

// ----------------------------------------------------------------------------
// handle

static void cu_free(struct backend *be)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    if (c) {
        if (c->stream)
            cudaStreamSynchronize(c->stream);
        cu_conv_cache_free(c->convs);
        cu_clip_cache_free(c->clips);
        if (c->ws)
            cudaFree(c->ws);
        if (c->dsum)
            cudaFree(c->dsum);
        if (c->hsum)
            cudaFreeHost(c->hsum);
        if (c->cudnn)
            cudnnDestroy(c->cudnn);
        if (c->stream)
            cudaStreamDestroy(c->stream);
        free(c);
    }
    free(be);
}

static const struct backend_iface cuda_iface = {
    .name = "cuda",
    .free = cu_free,
    .alloc = cu_alloc,
    .dealloc = cu_dealloc,
    .upload = cu_upload,
    .download = cu_download,
    .copy = cu_copy,
    .zero = cu_zero,
    .synchronize = cu_synchronize,
    .reserve = cu_reserve,
    .conv2d_forward = cu_conv2d_forward,
    .conv2d_backward = cu_conv2d_backward,
    .convt2d_forward = cu_convt2d_forward,
    .convt2d_backward = cu_convt2d_backward,
    .conv2d_workspace = NULL, /* a cuDNN plan knows its workspace once chosen (cuda-impl.h) */
    .convt2d_workspace = NULL,
    .reflpad_forward = cu_reflpad_forward,
    .reflpad_backward = cu_reflpad_backward,
    .batchnorm_forward = cu_batchnorm_forward,
    .batchnorm_backward = cu_batchnorm_backward,
    .instnorm_forward = cu_instnorm_forward,
    .instnorm_backward = cu_instnorm_backward,
    .act_forward = cu_act_forward,
    .act_backward = cu_act_backward,
    .mean_forward = cu_mean_forward,
    .mean_backward = cu_mean_backward,
    .loss_forward = cu_loss_forward,
    .loss_backward = cu_loss_backward,
    .axpy = cu_axpy,
    .adam_step = cu_adam_step,
    .sumsq = cu_sumsq,
    .scale = cu_scale,
    .clip_norm = cu_clip_norm,
    .conv_ex_workspace = cu_conv_ex_workspace,
    .conv_ex_forward = cu_conv_ex_forward,
    .pool2d_forward = cu_pool2d_forward,
    .resize_bilinear = cu_resize_bilinear,
};

extern "C" {

/* Visible GPUs; 0 when there is no driver, no device or any other error
 * (the caller then stays on the CPU). */
__attribute__((visibility("default"))) int backend_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

/* The backend on GPU `device`; NULL + err_set when it cannot be opened. */
__attribute__((visibility("default"))) backend_t backend_cuda_open(int device)
{
    /* the runtime's own reason (no driver, a driver too old for this
     * runtime, no device ...) tells far more than "no GPU" */
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        err_set("cuda: no usable GPU: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
        return NULL;
    }
    if (n < 1) {
        err_set("cuda: no GPU is visible");
        return NULL;
    }
    if (device < 0 || device >= n) {
        err_set("cuda: no GPU %d (%d visible)", device, n);
        return NULL;
    }
    struct backend *be = (struct backend *)calloc(1, sizeof *be);
    struct cuda_ctx *c = (struct cuda_ctx *)calloc(1, sizeof *c);
    if (!be || !c) {
        free(be), free(c);
        err_set("cuda: out of memory");
        return NULL;
    }
    be->iface = &cuda_iface;
    be->context = c;
    c->device = device;
    if (cuda_check(cudaSetDevice(device), "cudaSetDevice") ||
        cuda_check(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), "cudaStreamCreate") ||
        cuda_check(cudaDeviceGetAttribute(&c->sm_count, cudaDevAttrMultiProcessorCount, device),
                   "multiprocessor count") ||
        cudnn_check(cudnnCreate(&c->cudnn), "cudnnCreate") ||
        cudnn_check(cudnnSetStream(c->cudnn, c->stream), "cudnnSetStream")) {
        cu_free(be);
        return NULL;
    }
    return be;
}

} /* extern "C" */
