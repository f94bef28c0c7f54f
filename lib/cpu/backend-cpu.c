/*
 * backend-cpu: the reference backend.  Convolutions run on our own packed
 * GEMM (lib/cpu/cpu-gemm.h: AVX-512 or AVX2+FMA kernels chosen at run time,
 * the im2col fused into the packing; transposed convolutions and strided
 * input gradients fold a col matrix back with col2im); where neither ISA is
 * there (or AGING_CPU_GEMM=blas) they fall back to im2col + OpenBLAS sgemm
 * per image.  16-bit precisions go through lib/cpu/backend-cpu-half.c (bf16
 * on oneDNN, lib/cpu/cpu-dnnl.c, where the CPU has bf16 units).  Everything
 * else is plain loops parallelised with OpenMP over channels or planes.
 * Statistics (norms, means, losses) accumulate in double.  This file holds
 * the memory ops, the elementwise ops and the vtable; the convolutions are
 * backend-cpu-conv.c, the norms backend-cpu-norm.c.  The one scratch
 * buffer (the GEMMs' packing and col matrices) is owned by the backend,
 * sized at model build time (the conv2d_workspace / convt2d_workspace
 * entries, then backend_reserve()) and only grown by an op if a caller
 * skipped the reservation.
 *
 * OpenBLAS GEMMs (the fallback): OpenBLAS runs single-threaded and we split
 * each product between the OpenMP threads ourselves (sgemm_par).   The multi-threaded OpenBLAS
 * (pthread build, 0.3.21 here) returned wrong dW for some shapes when run
 * next to OpenMP regions (caught by test_models two_calls), and two thread
 * pools also fight over 2 cores.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu-dnnl.h"
#include "cpu-impl.h"
#include "base/err.h"

struct cpu_ctx {
    float *ws; /* the convolutions' scratch: GEMM packing, im2col / col2im */
    size_t ws_bytes;
    float *half; /* rounded copies of the 16-bit emulation (backend-cpu-half.c) */
    size_t half_floats;
    struct cpu_dnnl *dnnl; /* bf16 on the CPU's bf16 units (cpu-dnnl.h), made on first use */
};

// ----------------------------------------------------------------------------
// memory

static void *cpu_alloc(struct backend *be, size_t bytes)
{
    (void)be;
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) {
        err_set("cpu backend: out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

static void cpu_dealloc(struct backend *be, void *p)
{
    (void)be;
    free(p);
}

static int cpu_copy(struct backend *be, void *dst, const void *src, size_t bytes)
{
    (void)be;
    if (bytes && dst != src)
        memmove(dst, src, bytes);
    return 0;
}

static int cpu_zero(struct backend *be, void *dst, size_t bytes)
{
    (void)be;
    if (bytes)
        memset(dst, 0, bytes);
    return 0;
}

static int cpu_reserve(struct backend *be, size_t bytes)
{
    struct cpu_ctx *c = be->context;
    if (bytes <= c->ws_bytes)
        return 0;
    float *p = cpu_alloc(be, bytes);
    if (!p)
        return -1;
    be->allocs++;
    free(c->ws);
    c->ws = p;
    c->ws_bytes = bytes;
    return 0;
}

float *cpu_ws(struct backend *be, size_t bytes)
{
    if (cpu_reserve(be, bytes))
        return NULL;
    return ((struct cpu_ctx *)be->context)->ws;
}

float *cpu_half_scratch(struct backend *be, size_t floats)
{
    struct cpu_ctx *c = be->context;
    if (floats <= c->half_floats)
        return c->half;
    float *p = cpu_alloc(be, floats * sizeof(float));
    if (!p)
        return NULL;
    be->allocs++;
    free(c->half);
    c->half = p;
    c->half_floats = floats;
    return p;
}

struct cpu_dnnl *cpu_dnnl_of(struct backend *be)
{
    struct cpu_ctx *c = be->context;
    if (!c->dnnl)
        c->dnnl = cpu_dnnl_new(&be->allocs);
    return c->dnnl;
}

// ----------------------------------------------------------------------------
// reflection padding

static inline int reflect(int i, int n)
{
    if (i < 0)
        return -i;
    if (i >= n)
        return 2 * n - 2 - i;
    return i;
}

static int cpu_reflpad_forward(struct backend *be, float *out, const float *in, int planes, int h, int w,
                               int pad)
{
    (void)be;
    int ho = h + 2 * pad, wo = w + 2 * pad;
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < planes; pl++) {
        const float *src = in + (long)pl * h * w;
        float *dst = out + (long)pl * ho * wo;
        for (int oy = 0; oy < ho; oy++) {
            const float *srow = src + (long)reflect(oy - pad, h) * w;
            float *d = dst + (long)oy * wo;
            for (int x = 0; x < pad; x++)
                d[x] = srow[pad - x];
            memcpy(d + pad, srow, sizeof(float) * w);
            for (int x = 0; x < pad; x++)
                d[pad + w + x] = srow[w - 2 - x];
        }
    }
    return 0;
}

static int cpu_reflpad_backward(struct backend *be, float *din, const float *dout, int planes, int h, int w,
                                int pad)
{
    (void)be;
    int ho = h + 2 * pad, wo = w + 2 * pad;
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < planes; pl++) {
        float *dst = din + (long)pl * h * w;
        const float *src = dout + (long)pl * ho * wo;
        memset(dst, 0, sizeof(float) * h * w);
        for (int oy = 0; oy < ho; oy++) {
            float *drow = dst + (long)reflect(oy - pad, h) * w;
            const float *s = src + (long)oy * wo;
            for (int x = 0; x < pad; x++)
                drow[pad - x] += s[x];
            for (int x = 0; x < w; x++)
                drow[x] += s[pad + x];
            for (int x = 0; x < pad; x++)
                drow[w - 2 - x] += s[pad + w + x];
        }
    }
    return 0;
}

// ----------------------------------------------------------------------------
// activations

static int cpu_act_forward(struct backend *be, float *out, const float *in, long n, enum act_kind kind)
{
    (void)be;
    switch (kind) {
    case ACT_RELU:
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < n; i++)
            out[i] = in[i] > 0 ? in[i] : 0.0f;
        return 0;
    case ACT_LRELU:
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++)
            out[i] = in[i] > 0 ? in[i] : in[i] * ACT_LRELU_SLOPE;
        return 0;
    case ACT_TANH:
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++)
            out[i] = tanhf(in[i]);
        return 0;
    }
    return err_set("act_forward: unknown kind %d", (int)kind);
}

static int cpu_act_backward(struct backend *be, float *din, const float *dout, const float *out, long n,
                            enum act_kind kind)
{
    (void)be;
    switch (kind) {
    case ACT_RELU:
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < n; i++) {
            float g = dout[i]; /* loaded unconditionally: a select, not a branch */
            din[i] = out[i] > 0 ? g : 0.0f;
        }
        return 0;
    case ACT_LRELU:
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++)
            din[i] = out[i] > 0 ? dout[i] : dout[i] * ACT_LRELU_SLOPE;
        return 0;
    case ACT_TANH:
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < n; i++)
            din[i] = dout[i] * (1.0f - out[i] * out[i]);
        return 0;
    }
    return err_set("act_backward: unknown kind %d", (int)kind);
}

// ----------------------------------------------------------------------------
// reductions, losses, elementwise

static int cpu_mean_forward(struct backend *be, float *out, const float *in, int n, long m)
{
    (void)be;
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (long j = 0; j < m; j++)
            s += in[i * m + j];
        out[i] = (float)(s / m);
    }
    return 0;
}

static int cpu_mean_backward(struct backend *be, float *din, const float *dout, int n, long m)
{
    (void)be;
    for (int i = 0; i < n; i++) {
        float g = dout[i] / (float)m;
        for (long j = 0; j < m; j++)
            din[i * m + j] = g;
    }
    return 0;
}

static int cpu_loss_forward(struct backend *be, float *out, const float *x, const float *target, float tv,
                            long n, enum loss_kind kind)
{
    (void)be;
    double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (long i = 0; i < n; i++) {
        double d = (double)x[i] - (target ? target[i] : tv);
        s += kind == LOSS_MSE ? d * d : fabs(d);
    }
    *out = (float)(s / n);
    return 0;
}

static int cpu_loss_backward(struct backend *be, float *dx, const float *x, const float *target, float tv,
                             float scale, long n, enum loss_kind kind)
{
    (void)be;
    float k = (kind == LOSS_MSE ? 2.0f : 1.0f) * scale / (float)n;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        float d = x[i] - (target ? target[i] : tv);
        if (kind == LOSS_MSE)
            dx[i] += k * d;
        else
            dx[i] += d > 0 ? k : d < 0 ? -k : 0.0f;
    }
    return 0;
}

static int cpu_axpy(struct backend *be, float *y, float a, const float *x, long n)
{
    (void)be;
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; i++)
        y[i] += a * x[i];
    return 0;
}

// ----------------------------------------------------------------------------
// the table

static void cpu_free(struct backend *be)
{
    struct cpu_ctx *c = be->context;
    free(c->ws);
    free(c->half);
    cpu_dnnl_free(c->dnnl);
    free(c);
    free(be);
}

static const struct backend_iface cpu_iface = {
    .name = "cpu",
    .free = cpu_free,
    .alloc = cpu_alloc,
    .dealloc = cpu_dealloc,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .zero = cpu_zero,
    .synchronize = NULL,
    .reserve = cpu_reserve,
    .conv2d_forward = cpu_conv2d_forward,
    .conv2d_backward = cpu_conv2d_backward,
    .convt2d_forward = cpu_convt2d_forward,
    .convt2d_backward = cpu_convt2d_backward,
    .conv2d_workspace = cpu_conv2d_workspace,
    .convt2d_workspace = cpu_convt2d_workspace,
    .reflpad_forward = cpu_reflpad_forward,
    .reflpad_backward = cpu_reflpad_backward,
    .batchnorm_forward = cpu_batchnorm_forward,
    .batchnorm_backward = cpu_batchnorm_backward,
    .instnorm_forward = cpu_instnorm_forward,
    .instnorm_backward = cpu_instnorm_backward,
    .act_forward = cpu_act_forward,
    .act_backward = cpu_act_backward,
    .mean_forward = cpu_mean_forward,
    .mean_backward = cpu_mean_backward,
    .loss_forward = cpu_loss_forward,
    .loss_backward = cpu_loss_backward,
    .axpy = cpu_axpy,
    .adam_step = cpu_adam_step, /* lib/cpu/backend-cpu-optim.c */
    .sumsq = cpu_sumsq,
    .scale = cpu_scale,
    .conv_ex_workspace = cpu_conv_ex_workspace, /* lib/cpu/backend-cpu-pool.c */
    .conv_ex_forward = cpu_conv_ex_forward,
    .pool2d_forward = cpu_pool2d_forward,
    .resize_bilinear = cpu_resize_bilinear,
};

backend_t backend_cpu_init(void)
{
    struct backend *be = calloc(1, sizeof *be);
    struct cpu_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        err_set("backend_cpu_init: out of memory");
        return NULL;
    }
    openblas_set_num_threads(1); /* see sgemm_par (backend-cpu-conv.c) */
    be->iface = &cpu_iface;
    be->context = c;
    return be;
}
