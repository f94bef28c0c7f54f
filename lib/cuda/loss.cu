/*
 * loss: row means (the PatchGAN logit), the MSE / L1 losses, axpy and
 * scale for the CUDA backend, with the arithmetic of lib/cpu/backend-cpu.c.
 *
 * Every sum is in double and deterministic (reduce.cuh): a row mean is one
 * block per row; a loss is summed in fixed chunks of LOSS_CHUNK values (one
 * block each, partials in the workspace) whose partials one block then adds
 * in a fixed order and turns into out[0] = (float)(sum / n) on the device,
 * so the partition does not depend on the grid and nothing is read back.
 * The backward passes ACCUMULATE into dx with the CPU's float expression
 * (k computed once on the host exactly as the CPU does).
 */
#include "cuda-impl.h"
#include "reduce.cuh"

#define RED_THREADS 256
#define EW_THREADS  256
#define LOSS_CHUNK  32768L /* values per partial sum of a loss */

// ----------------------------------------------------------------------------
// means of rows

static __global__ void __launch_bounds__(RED_THREADS)
    mean_fwd_kernel(float *out, const float *in, int n, long m)
{
    __shared__ double sh[RED_SHARED];
    for (int row = blockIdx.x; row < n; row += gridDim.x) {
        const float *x = in + (long)row * m;
        auto value = [=](long p) { return (double)x[p]; };
        double s = block_sum_segs(1, m, m, value, sh);
        if (threadIdx.x == 0)
            out[row] = mean_of(s, m);
    }
}

static __global__ void mean_bwd_kernel(float *din, const float *dout, long total, long m)
{
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long)gridDim.x * blockDim.x)
        din[i] = mean_grad(dout[i / m], m);
}

int cu_mean_forward(struct backend *be, float *out, const float *in, int n, long m)
{
    if (n <= 0)
        return 0;
    mean_fwd_kernel<<<cuda_blocks(be, n, 1), RED_THREADS, 0, cuda_ctx_of(be)->stream>>>(out, in, n, m);
    return cuda_launched("mean_forward");
}

int cu_mean_backward(struct backend *be, float *din, const float *dout, int n, long m)
{
    long total = (long)n * m;
    if (total <= 0)
        return 0;
    mean_bwd_kernel<<<cuda_blocks(be, total, EW_THREADS), EW_THREADS, 0, cuda_ctx_of(be)->stream>>>(din, dout,
                                                                                                    total, m);
    return cuda_launched("mean_backward");
}

// ----------------------------------------------------------------------------
// losses

/* part[c] = sum of the loss terms of chunk c */
static __global__ void __launch_bounds__(RED_THREADS)
    loss_parts_kernel(double *part, const float *x, const float *target, float tv, long n, long nchunks,
                      enum loss_kind kind)
{
    __shared__ double sh[RED_SHARED];
    for (long c = blockIdx.x; c < nchunks; c += gridDim.x) {
        long lo = c * LOSS_CHUNK, len = n - lo < LOSS_CHUNK ? n - lo : LOSS_CHUNK;
        const float *xc = x + lo, *tc = target ? target + lo : NULL;
        auto term = [=](long p) { return loss_term(xc[p], tc ? tc[p] : tv, kind); };
        double s = block_sum_segs(1, len, len, term, sh);
        if (threadIdx.x == 0)
            part[c] = s;
    }
}

/* out[0] = (float)(sum of the partials / n), one block */
static __global__ void __launch_bounds__(RED_THREADS)
    loss_final_kernel(float *out, const double *part, long nchunks, long n)
{
    __shared__ double sh[RED_SHARED];
    auto partial = [=](long p) { return part[p]; };
    double s = block_sum_segs(1, nchunks, nchunks, partial, sh);
    if (threadIdx.x == 0)
        out[0] = mean_of(s, n);
}

int cu_loss_forward(struct backend *be, float *out, const float *x, const float *target, float target_value,
                    long n, enum loss_kind kind)
{
    if (kind != LOSS_MSE && kind != LOSS_L1)
        return err_set("loss_forward: unknown kind %d", (int)kind);
    if (n < 1)
        return err_set("loss_forward: empty input");
    long nchunks = (n + LOSS_CHUNK - 1) / LOSS_CHUNK;
    double *part = (double *)cuda_ws(be, (size_t)nchunks * sizeof(double));
    if (!part)
        return -1;
    cudaStream_t st = cuda_ctx_of(be)->stream;
    loss_parts_kernel<<<cuda_blocks(be, nchunks, 1), RED_THREADS, 0, st>>>(part, x, target, target_value, n,
                                                                           nchunks, kind);
    if (cuda_launched("loss_forward: partial sums"))
        return -1;
    loss_final_kernel<<<1, RED_THREADS, 0, st>>>(out, part, nchunks, n);
    return cuda_launched("loss_forward: total");
}

template <int K>
static __global__ void loss_bwd_kernel(float *dx, const float *x, const float *target, float tv, float k,
                                       long n)
{
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        dx[i] = loss_grad_acc(dx[i], x[i], target ? target[i] : tv, k, (enum loss_kind)K);
}

int cu_loss_backward(struct backend *be, float *dx, const float *x, const float *target, float target_value,
                     float scale, long n, enum loss_kind kind)
{
    if (kind != LOSS_MSE && kind != LOSS_L1)
        return err_set("loss_backward: unknown kind %d", (int)kind);
    if (n < 1)
        return err_set("loss_backward: empty input");
    float k = loss_grad_coef(scale, n, kind);
    int blocks = cuda_blocks(be, n, EW_THREADS);
    cudaStream_t st = cuda_ctx_of(be)->stream;
    if (kind == LOSS_MSE)
        loss_bwd_kernel<LOSS_MSE><<<blocks, EW_THREADS, 0, st>>>(dx, x, target, target_value, k, n);
    else
        loss_bwd_kernel<LOSS_L1><<<blocks, EW_THREADS, 0, st>>>(dx, x, target, target_value, k, n);
    return cuda_launched("loss_backward");
}

// ----------------------------------------------------------------------------
// elementwise

static __global__ void axpy_kernel(float *y, float a, const float *x, long n)
{
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        y[i] = f_add(y[i], f_mul(a, x[i]));
}

static __global__ void scale_kernel(float *x, float a, long n)
{
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        x[i] = f_mul(x[i], a);
}

int cu_axpy(struct backend *be, float *y, float a, const float *x, long n)
{
    if (n <= 0)
        return 0;
    axpy_kernel<<<cuda_blocks(be, n, EW_THREADS), EW_THREADS, 0, cuda_ctx_of(be)->stream>>>(y, a, x, n);
    return cuda_launched("axpy");
}

int cu_scale(struct backend *be, float *x, float a, long n)
{
    if (n <= 0)
        return 0;
    scale_kernel<<<cuda_blocks(be, n, EW_THREADS), EW_THREADS, 0, cuda_ctx_of(be)->stream>>>(x, a, n);
    return cuda_launched("scale");
}
