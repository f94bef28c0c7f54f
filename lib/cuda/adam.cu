/*
 * adam: the optimiser ops of the CUDA backend: one PyTorch 1.13 Adam
 * update, and the per-tensor sums of squares of clip_grad_norm_.
 *
 * Adam is elementwise: the host scalars are computed in double exactly as
 * cpu_adam_step (ops-math.cuh adam_scalars_of, compiled by the same host
 * compiler), and each element runs the float sequence of
 * lib/backend/backend-impl.h with fmaf where torch fuses and unfusable _rn
 * operations elsewhere, so GPU == CPU bit for bit.
 *
 * sumsq reproduces cpu_sumsq's blocks exactly: every run is cut into
 * segments of SUMSQ_SEG floats, one thread sums a segment sequentially in
 * double, and a second kernel adds each run's segment sums in order from 0.
 * The result is the CPU's to the bit and independent of the launch.  There
 * is less parallelism than in a tree (one thread per 8192 floats, ~1300
 * threads for 10M floats: a serial chain of 8192 double adds, tens of
 * microseconds by estimate, not measured), paid once per training step.
 * The runs' offsets and first segments are uploaded from the pinned buffer
 * ctx->hsum, which then receives the results (stream order keeps the two
 * uses apart, and the call synchronises before it returns).
 */
#include <string.h>

#include "cuda-impl.h"
#include "ops-math.cuh"

#define ADAM_THREADS  256
#define SUMSQ_THREADS 128

static __global__ void adam_kernel(float *param, const float *grad, float *exp_avg, float *exp_avg_sq, long n,
                                   struct adam_scalars s)
{
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        adam_update(&param[i], grad[i], &exp_avg[i], &exp_avg_sq[i], &s);
}

int cu_adam_step(struct backend *be, float *param, const float *grad, float *exp_avg, float *exp_avg_sq,
                 long n, double lr, double beta1, double beta2, double eps, double weight_decay, long step)
{
    if (n <= 0)
        return 0;
    struct adam_scalars s = adam_scalars_of(lr, beta1, beta2, eps, weight_decay, step);
    adam_kernel<<<cuda_blocks(be, n, ADAM_THREADS), ADAM_THREADS, 0, cuda_ctx_of(be)->stream>>>(
        param, grad, exp_avg, exp_avg_sq, n, s);
    return cuda_launched("adam_step");
}

// ----------------------------------------------------------------------------
// sums of squares

/* part[seg] = sequential sum of squares of segment seg */
static __global__ void sumsq_segments_kernel(double *part, const float *x, const long *run_off,
                                             const long *seg_first, int count, long nseg)
{
    for (long seg = (long)blockIdx.x * blockDim.x + threadIdx.x; seg < nseg;
         seg += (long)gridDim.x * blockDim.x) {
        long off, len;
        sumsq_segment(run_off, seg_first, count, seg, &off, &len);
        part[seg] = sumsq_seq(x + off, len);
    }
}

/* sum[r] = run r's segment sums in order */
static __global__ void sumsq_runs_kernel(double *sum, const double *part, const long *seg_first, int count)
{
    for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < count; r += gridDim.x * blockDim.x)
        sum[r] = sumsq_run_total(part, seg_first[r], seg_first[r + 1]);
}

/* dsum / hsum hold at least `need` doubles (grown once; nothing of theirs
 * is in flight: every sumsq synchronises before returning). */
static int sumsq_buffers(struct backend *be, long need)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    if (need <= c->sum_cap)
        return 0;
    if (need < 512)
        need = 512; /* the optimiser fetches 128 runs at a time: one growth */
    if (need > 0x7fffffffL)
        return err_set("sumsq: %ld runs are too many", need / 2);
    if (c->dsum && cuda_check(cudaFree(c->dsum), "sumsq: cudaFree"))
        return -1;
    c->dsum = NULL;
    if (c->hsum && cuda_check(cudaFreeHost(c->hsum), "sumsq: cudaFreeHost"))
        return -1;
    c->hsum = NULL;
    c->sum_cap = 0;
    /* a failed allocation is also the thread's last error: cleared, so the
     * next launch check does not report it against an unrelated kernel */
    if (cuda_check(cudaMalloc((void **)&c->dsum, (size_t)need * sizeof(double)), "sumsq: cudaMalloc")) {
        cudaGetLastError();
        c->dsum = NULL;
        return -1;
    }
    if (cuda_check(cudaMallocHost((void **)&c->hsum, (size_t)need * sizeof(double)),
                   "sumsq: cudaMallocHost")) {
        cudaGetLastError();
        c->hsum = NULL;
        return -1;
    }
    c->sum_cap = (int)need;
    be->allocs++;
    return 0;
}

int cu_sumsq_dev(struct backend *be, double *sums, double *part, const float *x, const long *d_run_off,
                 const long *d_seg_first, int count, long nseg)
{
    cudaStream_t st = cuda_ctx_of(be)->stream;
    sumsq_segments_kernel<<<cuda_blocks(be, nseg, SUMSQ_THREADS), SUMSQ_THREADS, 0, st>>>(
        part, x, d_run_off, d_seg_first, count, nseg);
    if (cuda_launched("sumsq: segments"))
        return -1;
    sumsq_runs_kernel<<<cuda_blocks(be, count, SUMSQ_THREADS), SUMSQ_THREADS, 0, st>>>(sums, part,
                                                                                       d_seg_first, count);
    return cuda_launched("sumsq: runs");
}

int cu_sumsq(struct backend *be, double *out, const float *x, const long *sizes, int count)
{
    if (count <= 0)
        return 0;
    struct cuda_ctx *c = cuda_ctx_of(be);
    long tab_longs = 2 * ((long)count + 1); /* run_off [count+1], seg_first [count+1] */
    if (sumsq_buffers(be, tab_longs))
        return -1;

    /* the table, written into the pinned buffer (its bytes are only ever
     * read back by memcpy, so reusing it as longs is well defined) */
    long *tab = (long *)c->hsum;
    long nseg = sumsq_table(sizes, count, tab, tab + count + 1);
    if (nseg < 0)
        return err_set("sumsq: negative size");

    size_t tab_bytes = (size_t)tab_longs * sizeof(long);
    char *ws = (char *)cuda_ws(be, tab_bytes + (size_t)nseg * sizeof(double));
    if (!ws)
        return -1;
    long *d_run_off = (long *)ws, *d_seg_first = d_run_off + count + 1;
    double *part = (double *)(ws + tab_bytes);

    CU_TRY(cudaMemcpyAsync(ws, tab, tab_bytes, cudaMemcpyHostToDevice, c->stream));
    if (cu_sumsq_dev(be, c->dsum, part, x, d_run_off, d_seg_first, count, nseg))
        return -1;
    CU_TRY(
        cudaMemcpyAsync(c->hsum, c->dsum, (size_t)count * sizeof(double), cudaMemcpyDeviceToHost, c->stream));
    CU_TRY(cudaStreamSynchronize(c->stream));
    memcpy(out, c->hsum, (size_t)count * sizeof(double));
    return 0;
}
