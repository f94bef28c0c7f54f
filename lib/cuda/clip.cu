/*
 * clip: clip_grad_norm_dev (lib/nn/optim.h) on the device, so a training step
 * need not wait for the GPU to learn the gradient norm.  The sums of
 * squares are cu_sumsq's (same segments, same order: bit for bit the CPU's),
 * then one thread adds the runs' float norms in order and computes the
 * coefficient (ops-math.cuh clip_total_norm / clip_coef, which the host test
 * compares with lib/nn/optim.c), and the scale kernels read it from device
 * memory.
 *
 * The segment tables of a slab depend only on its tensor sizes, which a
 * trainer keeps for its whole life: they are uploaded once per distinct
 * size list (a synchronous copy, on the first step) and cached, so later
 * calls queue kernels only.
 */
#include <stdlib.h>
#include <string.h>

#include "cuda-impl.h"
#include "ops-math.cuh"

#define SCALE_THREADS 256

struct clip_table {
    struct clip_table *next;
    long *sizes; /* host copy of the size list it was made for */
    int count;
    long nseg, numel;
    long *d_tab; /* device: run_off [count+1], seg_first [count+1] */
};

struct cuda_clip_cache {
    struct clip_table *head;
};

void cu_clip_cache_free(struct cuda_clip_cache *c)
{
    if (!c)
        return;
    for (struct clip_table *t = c->head, *next; t; t = next) {
        next = t->next;
        cudaFree(t->d_tab);
        free(t->sizes);
        free(t);
    }
    free(c);
}

/* The cached tables of this size list, made on first use. */
static struct clip_table *table_for(struct backend *be, const long *sizes, int count)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    if (!c->clips && !(c->clips = (struct cuda_clip_cache *)calloc(1, sizeof *c->clips))) {
        err_set("cuda: clip: out of memory");
        return NULL;
    }
    for (struct clip_table *t = c->clips->head; t; t = t->next)
        if (t->count == count && !memcmp(t->sizes, sizes, (size_t)count * sizeof *sizes))
            return t;
    struct clip_table *t = (struct clip_table *)calloc(1, sizeof *t);
    long *tab = (long *)malloc(2 * ((size_t)count + 1) * sizeof *tab);
    if (t)
        t->sizes = (long *)malloc((size_t)count * sizeof *sizes);
    if (!t || !tab || !t->sizes) {
        free(tab);
        if (t)
            free(t->sizes);
        free(t);
        err_set("cuda: clip: out of memory");
        return NULL;
    }
    memcpy(t->sizes, sizes, (size_t)count * sizeof *sizes);
    t->count = count;
    t->nseg = sumsq_table(sizes, count, tab, tab + count + 1);
    t->numel = tab[count];
    size_t bytes = 2 * ((size_t)count + 1) * sizeof *tab;
    int bad = t->nseg < 0 ? err_set("cuda: clip: negative size") : 0;
    if (!bad && cudaMalloc((void **)&t->d_tab, bytes) != cudaSuccess) {
        cudaGetLastError(); /* else the next launch check would report it */
        t->d_tab = NULL;
        bad = err_set("cuda: clip: out of device memory");
    }
    /* on our stream, then waited for: the kernels that read the table run on
     * that stream (the legacy stream would not order them), and tab is freed
     * next.  Once per size list, in the first step. */
    if (!bad)
        bad = cuda_check(cudaMemcpyAsync(t->d_tab, tab, bytes, cudaMemcpyHostToDevice, c->stream),
                         "clip: table upload") ||
              cuda_check(cudaStreamSynchronize(c->stream), "clip: table upload");
    free(tab);
    if (bad) {
        cudaFree(t->d_tab);
        free(t->sizes);
        free(t);
        return NULL;
    }
    be->allocs++;
    t->next = c->clips->head;
    c->clips->head = t;
    return t;
}

static __global__ void clip_finish_kernel(const double *sums, long nruns, float max_norm, float *norm_out,
                                          float *coef_out)
{
    float total = clip_total_norm(sums, nruns);
    *norm_out = total;
    *coef_out = clip_coef(total, max_norm);
}

/* x *= coef, unless coef is exactly 1 (the CPU skips the pass then) */
static __global__ void scale_by_kernel(float *x, long n, const float *coef)
{
    float c = *coef;
    if (c == 1.0f)
        return;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        x[i] = f_mul(x[i], c);
}

int cu_clip_norm(struct backend *be, const struct grad_slab *slabs, int nslabs, double max_norm,
                 float *norm_dev)
{
    if (nslabs < 1 || nslabs > 8 || !norm_dev)
        return err_set("cuda: clip: bad arguments");
    struct clip_table *tabs[8];
    long nruns = 0, maxseg = 1;
    for (int s = 0; s < nslabs; s++) {
        if (!(tabs[s] = table_for(be, slabs[s].sizes, slabs[s].count)))
            return -1;
        nruns += slabs[s].count;
        if (tabs[s]->nseg > maxseg)
            maxseg = tabs[s]->nseg;
    }
    /* scratch: the runs' sums (all slabs, in order) | one slab's segment sums | the coefficient */
    size_t sums_bytes = (size_t)(nruns ? nruns : 1) * sizeof(double);
    size_t part_bytes = (size_t)maxseg * sizeof(double);
    char *ws = (char *)cuda_ws(be, sums_bytes + part_bytes + sizeof(double));
    if (!ws)
        return -1;
    double *sums = (double *)ws, *part = (double *)(ws + sums_bytes);
    float *coef = (float *)(ws + sums_bytes + part_bytes);
    cudaStream_t st = cuda_ctx_of(be)->stream;
    for (int s = 0, r0 = 0; s < nslabs; r0 += slabs[s].count, s++) {
        const struct clip_table *t = tabs[s];
        if (t->count && cu_sumsq_dev(be, sums + r0, part, slabs[s].grad, t->d_tab, t->d_tab + t->count + 1,
                                     t->count, t->nseg))
            return -1;
    }
    clip_finish_kernel<<<1, 1, 0, st>>>(sums, nruns, (float)max_norm, norm_dev, coef);
    if (cuda_launched("clip: finish"))
        return -1;
    for (int s = 0; s < nslabs; s++) {
        long n = tabs[s]->numel;
        if (!n)
            continue;
        scale_by_kernel<<<cuda_blocks(be, n, SCALE_THREADS), SCALE_THREADS, 0, st>>>(slabs[s].grad, n, coef);
        if (cuda_launched("clip: scale"))
            return -1;
    }
    return 0;
}
