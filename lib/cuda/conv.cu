/*
 * conv: the CUDA backend's Conv2d and ConvTranspose2d, forward and backward,
 * on cuDNN's convolution API (cudnn_cnn.h), and the cache of cuDNN plans
 * that conv-ex.cu shares (conv-cache.h).
 *
 * Weights: Conv2d OIHW [cout,cin,k,k] is cuDNN's KCRS filter as is.  A
 * ConvTranspose2d with IOHW weights [cin,cout,k,k] IS the data gradient of
 * the convolution from its output grid [cout,hout,wout] to its input grid
 * [cin,h,w] with filter [K=cin, C=cout, k, k] (the same memory, read as
 * KCRS), so its forward is cudnnConvolutionBackwardData, its input gradient
 * cudnnConvolutionForward of dout, and its weight gradient
 * cudnnConvolutionBackwardFilter with x = dout, dy = in.  output_padding
 * needs nothing special: the descriptors carry hout/wout themselves, and
 * cuDNN checks that the conv of [hout,wout] gives back [h,w] (true whenever
 * out_pad < stride, which PyTorch requires too).
 *
 * Precision (lib/backend/backend.h): in FP32 the tensors are used in place (float
 * NCHW, FMA math, so no TF32).  In BF16/FP16 every operand is rounded to the
 * 16-bit type and transposed to NHWC by cu_to_half into the workspace, cuDNN
 * runs on tensor cores accumulating in float and writes a 16-bit result,
 * which cu_from_half widens into the float NCHW destination (overwriting,
 * or adding for the weight gradient).  Biases are added and reduced in float.
 *
 * Workspace: each op computes its whole need first, [cuDNN workspace |
 * 16-bit buffers], and takes it with ONE cuda_ws() call, since growing the
 * workspace moves it.  The cuDNN plans (descriptors + algorithm) are cached
 * per geometry, direction and precision: cudnnFind*AlgorithmEx times the
 * candidates once, on the op's own buffers, and its fastest successful
 * choice is kept for good.
 */
#include "conv-cache.h"

#include <limits.h>
#include <stdlib.h>

// ----------------------------------------------------------------------------
// the plan cache

/* Find may offer cuDNN this much workspace whatever the tensors' size (FFT
 * and Winograd variants ask for a lot, and are often the fastest); larger
 * convolutions may offer as much as their largest tensor. */
#define FIND_WS_MIN ((size_t)256 << 20)
/* Room for the perf results of any direction (cuDNN 9 has at most 8). */
#define PERF_MAX 32

struct conv_algo {
    struct conv_algo *next;
    struct conv_geom g;
    enum conv_dir dir;
    enum backend_precision prec;
    int nhwc; /* 16-bit only: NHWC tensors, KRSC filter */
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    size_t filter_bytes; /* of w in the plan's type: Find's scratch output for the filter gradient */
    size_t find_ws;      /* workspace offered to Find */
    int heur_algo;       /* cuDNN's heuristic choice, in case Find itself fails */
    cudnnMathType_t heur_math;
    int none;          /* cuDNN has no algorithm for it: remembered, so it is asked once */
    cudnnStatus_t why; /* and why, when cuDNN said */
    int found;         /* the algorithm below is chosen */
    int algo;          /* a cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t, per dir */
    cudnnMathType_t math;
    size_t algo_ws; /* workspace of algo */
};

struct cuda_conv_cache {
    struct conv_algo *head;
};

/* One perf result of any direction. */
struct perf {
    int algo;
    cudnnStatus_t status;
    size_t memory;
    cudnnMathType_t math;
};

static const char *dir_name(enum conv_dir d)
{
    switch (d) {
    case CONV_FWD: return "forward";
    case CONV_BWD_DATA: return "backward-data";
    case CONV_BWD_FILTER: return "backward-filter";
    }
    return "?";
}

/* The cuDNN call that runs a plan of direction d (its errors name it). */
static const char *run_name(enum conv_dir d)
{
    switch (d) {
    case CONV_FWD: return "cudnnConvolutionForward";
    case CONV_BWD_DATA: return "cudnnConvolutionBackwardData";
    case CONV_BWD_FILTER: return "cudnnConvolutionBackwardFilter";
    }
    return "cudnnConvolution?";
}

static int geom_equal(const struct conv_geom *a, const struct conv_geom *b)
{
    return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w && a->k == b->k && a->kh == b->kh &&
           a->kw == b->kw && a->oh == b->oh && a->ow == b->ow && a->ph == b->ph && a->pw == b->pw &&
           a->sh == b->sh && a->sw == b->sw && a->y_nstride == b->y_nstride;
}

static void algo_destroy(struct conv_algo *a)
{
    /* teardown: statuses are of no use here, and destroying is host-only */
    if (a->xd)
        cudnnDestroyTensorDescriptor(a->xd);
    if (a->yd)
        cudnnDestroyTensorDescriptor(a->yd);
    if (a->wd)
        cudnnDestroyFilterDescriptor(a->wd);
    if (a->cd)
        cudnnDestroyConvolutionDescriptor(a->cd);
    free(a);
}

void cu_conv_cache_free(struct cuda_conv_cache *c)
{
    if (!c)
        return;
    struct conv_algo *a = c->head;
    while (a) {
        struct conv_algo *next = a->next;
        algo_destroy(a);
        a = next;
    }
    free(c);
}

/* Set the descriptors for layout nhwc.  0; 1 when cuDNN refuses them (the
 * status in *why); -1 on other errors. */
static int set_descs(struct conv_algo *a, int nhwc, cudnnStatus_t *why)
{
    const struct conv_geom *g = &a->g;
    cudnnDataType_t t = a->prec == BACKEND_FP32   ? CUDNN_DATA_FLOAT
                        : a->prec == BACKEND_BF16 ? CUDNN_DATA_BFLOAT16
                                                  : CUDNN_DATA_HALF;
    cudnnTensorFormat_t f = nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    cudnnStatus_t s = cudnnSetTensor4dDescriptor(a->xd, f, t, g->n, g->c, g->h, g->w);
    if (s == CUDNN_STATUS_SUCCESS) {
        if (g->y_nstride)
            s = cudnnSetTensor4dDescriptorEx(a->yd, t, g->n, g->k, g->oh, g->ow, (int)g->y_nstride,
                                             g->oh * g->ow, g->ow, 1);
        else
            s = cudnnSetTensor4dDescriptor(a->yd, f, t, g->n, g->k, g->oh, g->ow);
    }
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnSetFilter4dDescriptor(a->wd, t, f, g->k, g->c, g->kh, g->kw);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnSetConvolution2dDescriptor(a->cd, g->ph, g->pw, g->sh, g->sw, 1, 1, CUDNN_CROSS_CORRELATION,
                                            CUDNN_DATA_FLOAT);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnSetConvolutionMathType(a->cd,
                                        a->prec == BACKEND_FP32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH);
    if (s != CUDNN_STATUS_SUCCESS) {
        *why = s;
        return 1;
    }
    a->nhwc = nhwc;
    return 0;
}

static int clamp_count(int n)
{
    return n < 1 ? PERF_MAX : n > PERF_MAX ? PERF_MAX : n;
}

/* One cuDNN ranking query with perf results of type R: the direction's
 * algorithm count (max_count), then query(count, &got, results), whose
 * results are copied into p (*np of them).  The status of the queries. */
template <typename R, typename Q>
static cudnnStatus_t perf_query(cudnnHandle_t h, cudnnStatus_t (*max_count)(cudnnHandle_t, int *), Q query,
                                struct perf *p, int *np)
{
    R r[PERF_MAX];
    int want = 0, got = 0;
    *np = 0;
    cudnnStatus_t s = max_count(h, &want);
    if (s == CUDNN_STATUS_SUCCESS)
        s = query(clamp_count(want), &got, r);
    if (s != CUDNN_STATUS_SUCCESS)
        return s;
    *np = got < 0 ? 0 : got > PERF_MAX ? PERF_MAX : got;
    for (int i = 0; i < *np; i++) {
        p[i].algo = (int)r[i].algo;
        p[i].status = r[i].status;
        p[i].memory = r[i].memory;
        p[i].math = r[i].mathType;
    }
    return s;
}

/* The plan's algorithms as cuDNN ranks them (a status per algorithm): by
 * its heuristics (find 0), or timed by FindEx on the real buffers in1, in2
 * -> out with workspace ws (find 1; sorted by time).  The status of the
 * query itself is returned: a refusal means no algorithm for this layout,
 * not a failure of ours. */
static cudnnStatus_t ranking(cudnnHandle_t h, const struct conv_algo *a, int find, const void *in1,
                             const void *in2, void *out, void *ws, size_t ws_bytes, struct perf *p, int *np)
{
    *np = 0;
    switch (a->dir) {
    case CONV_FWD:
        return perf_query<cudnnConvolutionFwdAlgoPerf_t>(
            h, cudnnGetConvolutionForwardAlgorithmMaxCount,
            [&](int n, int *got, cudnnConvolutionFwdAlgoPerf_t *r) {
                if (find)
                    return cudnnFindConvolutionForwardAlgorithmEx(h, a->xd, in1, a->wd, in2, a->cd, a->yd,
                                                                  out, n, got, r, ws, ws_bytes);
                return cudnnGetConvolutionForwardAlgorithm_v7(h, a->xd, a->wd, a->cd, a->yd, n, got, r);
            },
            p, np);
    case CONV_BWD_DATA:
        return perf_query<cudnnConvolutionBwdDataAlgoPerf_t>(
            h, cudnnGetConvolutionBackwardDataAlgorithmMaxCount,
            [&](int n, int *got, cudnnConvolutionBwdDataAlgoPerf_t *r) {
                if (find)
                    return cudnnFindConvolutionBackwardDataAlgorithmEx(h, a->wd, in1, a->yd, in2, a->cd,
                                                                       a->xd, out, n, got, r, ws, ws_bytes);
                return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, a->wd, a->yd, a->cd, a->xd, n, got, r);
            },
            p, np);
    case CONV_BWD_FILTER:
        return perf_query<cudnnConvolutionBwdFilterAlgoPerf_t>(
            h, cudnnGetConvolutionBackwardFilterAlgorithmMaxCount,
            [&](int n, int *got, cudnnConvolutionBwdFilterAlgoPerf_t *r) {
                if (find)
                    return cudnnFindConvolutionBackwardFilterAlgorithmEx(h, a->xd, in1, a->yd, in2, a->cd,
                                                                         a->wd, out, n, got, r, ws, ws_bytes);
                return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, a->xd, a->yd, a->cd, a->wd, n, got,
                                                                     r);
            },
            p, np);
    }
    return CUDNN_STATUS_SUCCESS;
}

/* cuDNN's heuristic ranking of every algorithm for the plan. */
static cudnnStatus_t heuristics(cudnnHandle_t h, const struct conv_algo *a, struct perf *p, int *np)
{
    return ranking(h, a, 0, NULL, NULL, NULL, NULL, 0, p, np);
}

/* Time every algorithm on the real buffers (FindEx sorts by time). */
static cudnnStatus_t find_ex(cudnnHandle_t h, const struct conv_algo *a, const void *in1, const void *in2,
                             void *out, void *ws, size_t ws_bytes, struct perf *p, int *np)
{
    return ranking(h, a, 1, in1, in2, out, ws, ws_bytes, p, np);
}

/* The workspace algo needs under the descriptor's current math type. */
static int algo_ws_query(cudnnHandle_t h, const struct conv_algo *a, int algo, size_t *bytes)
{
    *bytes = 0;
    switch (a->dir) {
    case CONV_FWD:
        DNN_TRY(cudnnGetConvolutionForwardWorkspaceSize(h, a->xd, a->wd, a->cd, a->yd,
                                                        (cudnnConvolutionFwdAlgo_t)algo, bytes));
        break;
    case CONV_BWD_DATA:
        DNN_TRY(cudnnGetConvolutionBackwardDataWorkspaceSize(h, a->wd, a->yd, a->cd, a->xd,
                                                             (cudnnConvolutionBwdDataAlgo_t)algo, bytes));
        break;
    case CONV_BWD_FILTER:
        DNN_TRY(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, a->xd, a->yd, a->cd, a->wd,
                                                               (cudnnConvolutionBwdFilterAlgo_t)algo, bytes));
        break;
    }
    return 0;
}

static size_t elem_bytes(enum backend_precision p)
{
    return p == BACKEND_FP32 ? sizeof(float) : 2;
}

/* Rank the algorithms for the plan's current layout and size the workspace
 * Find will offer: enough for every candidate up to the cap, and at least
 * for the cheapest one.  0, or 1 when no algorithm supports the layout
 * (*why: cuDNN's status, SUCCESS when it simply listed none). */
static int rank(cudnnHandle_t h, struct conv_algo *a, cudnnStatus_t *why)
{
    struct perf p[PERF_MAX];
    int np = 0;
    cudnnStatus_t s = heuristics(h, a, p, &np);
    if (s != CUDNN_STATUS_SUCCESS) {
        *why = s;
        return 1;
    }
    const struct conv_geom *g = &a->g;
    size_t eb = elem_bytes(a->prec);
    size_t xb = (size_t)g->n * g->c * g->h * g->w * eb;
    size_t yb = (size_t)g->n * (g->y_nstride ? (size_t)g->y_nstride : (size_t)g->k * g->oh * g->ow) * eb;
    size_t cap = FIND_WS_MIN;
    if (xb > cap)
        cap = xb;
    if (yb > cap)
        cap = yb;
    size_t within = 0, least = (size_t)-1;
    int ok = 0, first = -1;
    for (int i = 0; i < np; i++) {
        if (p[i].status != CUDNN_STATUS_SUCCESS)
            continue;
        ok++;
        if (p[i].memory < least)
            least = p[i].memory;
        if (p[i].memory <= cap && p[i].memory > within)
            within = p[i].memory;
    }
    if (!ok) {
        *why = CUDNN_STATUS_SUCCESS;
        return 1;
    }
    a->find_ws = within > least ? within : least;
    /* the heuristics' favourite that fits, should Find itself fail */
    for (int i = 0; i < np && first < 0; i++)
        if (p[i].status == CUDNN_STATUS_SUCCESS && p[i].memory <= a->find_ws)
            first = i;
    a->heur_algo = p[first].algo;
    a->heur_math = p[first].math;
    return 0;
}

/* err_set why a has no algorithm, and 1 (conv_algo_get's "none"). */
static int no_algorithm(const struct conv_algo *a)
{
    const struct conv_geom *g = &a->g;
    const char *type = a->prec == BACKEND_FP32 ? "fp32" : a->prec == BACKEND_BF16 ? "bf16" : "fp16";
    err_set("cuda: cuDNN has no %s %s algorithm for x [%d,%d,%d,%d] w [%d,%d,%d,%d] y [%d,%d] pad %d,%d "
            "stride %d,%d%s%s%s",
            type, dir_name(a->dir), g->n, g->c, g->h, g->w, g->k, g->c, g->kh, g->kw, g->oh, g->ow, g->ph,
            g->pw, g->sh, g->sw, g->y_nstride ? " (strided output)" : "",
            a->why != CUDNN_STATUS_SUCCESS ? ": " : "",
            a->why != CUDNN_STATUS_SUCCESS ? cudnnGetErrorString(a->why) : "");
    return 1;
}

static int geom_valid(const struct conv_geom *g)
{
    return g->n > 0 && g->c > 0 && g->h > 0 && g->w > 0 && g->k > 0 && g->kh > 0 && g->kw > 0 && g->oh > 0 &&
           g->ow > 0 && g->ph >= 0 && g->pw >= 0 && g->sh > 0 && g->sw > 0 && g->y_nstride >= 0 &&
           g->y_nstride <= INT_MAX && (long)g->oh * g->ow <= INT_MAX &&
           (!g->y_nstride || g->y_nstride >= (long)g->k * g->oh * g->ow);
}

int conv_algo_get(struct backend *be, const struct conv_geom *g, enum conv_dir dir,
                  enum backend_precision prec, struct conv_algo **out)
{
    struct cuda_ctx *ctx = cuda_ctx_of(be);
    *out = NULL;
    if (prec != BACKEND_FP32 && prec != BACKEND_BF16 && prec != BACKEND_FP16)
        return err_set("cuda: conv: bad precision %d", (int)prec);
    if (!geom_valid(g))
        return err_set(
            "cuda: conv: bad geometry x [%d,%d,%d,%d] w [%d,%d,%d,%d] y [%d,%d] pad %d,%d stride %d,%d", g->n,
            g->c, g->h, g->w, g->k, g->c, g->kh, g->kw, g->oh, g->ow, g->ph, g->pw, g->sh, g->sw);
    if (g->y_nstride && prec != BACKEND_FP32)
        return err_set("cuda: conv: a strided output is fp32 only");
    if (!ctx->convs) {
        ctx->convs = (struct cuda_conv_cache *)calloc(1, sizeof *ctx->convs);
        if (!ctx->convs)
            return err_set("cuda: conv: out of memory");
    }
    for (struct conv_algo *a = ctx->convs->head; a; a = a->next)
        if (a->dir == dir && a->prec == prec && geom_equal(&a->g, g)) {
            if (a->none)
                return no_algorithm(a);
            *out = a;
            return 0;
        }

    struct conv_algo *a = (struct conv_algo *)calloc(1, sizeof *a);
    if (!a)
        return err_set("cuda: conv: out of memory");
    a->g = *g;
    a->dir = dir;
    a->prec = prec;
    a->filter_bytes = (size_t)g->k * g->c * g->kh * g->kw * elem_bytes(prec);
    if (cudnn_check(cudnnCreateTensorDescriptor(&a->xd), "conv: create x descriptor") ||
        cudnn_check(cudnnCreateTensorDescriptor(&a->yd), "conv: create y descriptor") ||
        cudnn_check(cudnnCreateFilterDescriptor(&a->wd), "conv: create filter descriptor") ||
        cudnn_check(cudnnCreateConvolutionDescriptor(&a->cd), "conv: create conv descriptor")) {
        algo_destroy(a);
        return -1;
    }

    /* 16-bit: NHWC first (what the tensor-core kernels want), NCHW should
     * cuDNN have nothing for that layout. */
    cudnnStatus_t why = CUDNN_STATUS_SUCCESS;
    int rc = 1;
    for (int nhwc = prec == BACKEND_FP32 ? 0 : 1; nhwc >= 0 && rc == 1; nhwc--) {
        rc = set_descs(a, nhwc, &why);
        if (rc == 0) {
            /* the output size must be the conv's own: this also checks a
             * transposed conv's output_padding (< stride) */
            int on = 0, oc = 0, oh = 0, ow = 0;
            if (cudnn_check(cudnnGetConvolution2dForwardOutputDim(a->cd, a->xd, a->wd, &on, &oc, &oh, &ow),
                            "conv: output size")) {
                algo_destroy(a);
                return -1;
            }
            if (on != g->n || oc != g->k || oh != g->oh || ow != g->ow) {
                algo_destroy(a);
                return err_set("cuda: conv: output [%d,%d,%d,%d] is not the convolution's [%d,%d,%d,%d] "
                               "(transposed conv: output_padding must be < stride)",
                               g->n, g->k, g->oh, g->ow, on, oc, oh, ow);
            }
            rc = rank(ctx->cudnn, a, &why);
        }
    }
    a->next = ctx->convs->head;
    ctx->convs->head = a;
    if (rc) {
        a->none = 1;
        a->why = why;
        return no_algorithm(a);
    }
    *out = a;
    return 0;
}

int conv_algo_nhwc(const struct conv_algo *a)
{
    return a->nhwc;
}

size_t conv_algo_ws_bytes(const struct conv_algo *a)
{
    size_t t = a->found ? a->algo_ws : a->find_ws;
    if (!a->found && a->dir == CONV_BWD_FILTER)
        conv_ws_take(&t, a->filter_bytes);
    return t > CONV_WS_ALIGN ? t : CONV_WS_ALIGN;
}

/* Choose the algorithm: FindEx's fastest success that fits the workspace
 * offered, else the heuristics' favourite.  The filter gradient is timed
 * into scratch (after the offered workspace), since its real destination
 * may be accumulated into. */
static int choose(struct backend *be, struct conv_algo *a, const void *in1, const void *in2, void *out,
                  float beta, void *ws, size_t ws_bytes)
{
    cudnnHandle_t h = cuda_ctx_of(be)->cudnn;
    if (ws_bytes < conv_algo_ws_bytes(a))
        return err_set("cuda: conv %s: workspace of %zu bytes, %zu needed", dir_name(a->dir), ws_bytes,
                       conv_algo_ws_bytes(a));
    void *tgt = out;
    if (a->dir == CONV_BWD_FILTER) {
        size_t t = a->find_ws;
        tgt = (char *)ws + conv_ws_take(&t, a->filter_bytes);
    } else if (beta != 0.0f)
        return err_set("cuda: conv %s: the first run must overwrite its output", dir_name(a->dir));

    struct perf p[PERF_MAX];
    int np = 0, pick = -1;
    cudnnStatus_t s = find_ex(h, a, in1, in2, tgt, ws, a->find_ws, p, &np);
    if (s == CUDNN_STATUS_SUCCESS)
        for (int i = 0; i < np && pick < 0; i++)
            if (p[i].status == CUDNN_STATUS_SUCCESS && p[i].memory <= a->find_ws)
                pick = i;
    /* FindEx launches candidates that may fail (a kernel that cannot
     * launch, a scratch allocation of its own): any error they leave as the
     * thread's last error is not ours, and would otherwise be reported by
     * the next cuda_launched() against an unrelated kernel.  A kernel that
     * faulted is sticky and still surfaces at the next synchronisation. */
    cudaGetLastError();
    a->algo = pick >= 0 ? p[pick].algo : a->heur_algo;
    cudnnMathType_t math = pick >= 0 ? p[pick].math : a->heur_math;
    /* FP32 keeps FMA math whatever the result says: DEFAULT would allow TF32.
     * In 16-bit the algorithm was timed with the math type it reports. */
    a->math = a->prec == BACKEND_FP32 ? CUDNN_FMA_MATH : math;
    DNN_TRY(cudnnSetConvolutionMathType(a->cd, a->math));
    size_t need = 0;
    if (algo_ws_query(h, a, a->algo, &need))
        return -1;
    if (pick >= 0 && p[pick].memory > need)
        need = p[pick].memory;
    if (need > a->find_ws)
        return err_set("cuda: conv %s: algorithm %d needs %zu bytes of workspace, %zu offered",
                       dir_name(a->dir), a->algo, need, a->find_ws);
    a->algo_ws = need;
    a->found = 1;
    return 0;
}

/* A refusal of the configuration (cuDNN 9 reports it as one of the
 * NOT_SUPPORTED sub-codes: shape, layout, padding ...), as opposed to a
 * broken installation (driver, runtime, architecture, missing sub-library),
 * which stays an error with its own message. */
static int refused(cudnnStatus_t st)
{
    if (CUDNN_STATUS_CATEGORY(st) != CUDNN_STATUS_NOT_SUPPORTED)
        return 0;
    switch (st) {
    case CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER:
    case CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART:
    case CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH:
    case CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING:
    case CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE: return 0;
    default: return 1;
    }
}

int conv_algo_run(struct backend *be, struct conv_algo *a, const void *in1, const void *in2, void *out,
                  float beta, void *ws, size_t ws_bytes)
{
    struct cuda_ctx *ctx = cuda_ctx_of(be);
    if (!in1 || !in2 || !out || !ws)
        return err_set("cuda: conv %s: NULL buffer", dir_name(a->dir));
    if (a->none)
        return no_algorithm(a);
    int first = !a->found;
    if (first && choose(be, a, in1, in2, out, beta, ws, ws_bytes))
        return -1;
    if (ws_bytes < a->algo_ws)
        return err_set("cuda: conv %s: workspace of %zu bytes, %zu needed", dir_name(a->dir), ws_bytes,
                       a->algo_ws);
    const float one = 1.0f, b = beta; /* float scalars: the compute type is float */
    cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
    switch (a->dir) {
    case CONV_FWD:
        st = cudnnConvolutionForward(ctx->cudnn, &one, a->xd, in1, a->wd, in2, a->cd,
                                     (cudnnConvolutionFwdAlgo_t)a->algo, ws, a->algo_ws, &b, a->yd, out);
        break;
    case CONV_BWD_DATA:
        st = cudnnConvolutionBackwardData(ctx->cudnn, &one, a->wd, in1, a->yd, in2, a->cd,
                                          (cudnnConvolutionBwdDataAlgo_t)a->algo, ws, a->algo_ws, &b, a->xd,
                                          out);
        break;
    case CONV_BWD_FILTER:
        st = cudnnConvolutionBackwardFilter(ctx->cudnn, &one, a->xd, in1, a->yd, in2, a->cd,
                                            (cudnnConvolutionBwdFilterAlgo_t)a->algo, ws, a->algo_ws, &b,
                                            a->wd, out);
        break;
    }
    /* The heuristics may list an algorithm (the fallback when FindEx found
     * none that ran) that the configuration then refuses, e.g. a strided
     * output: on the first run that means the plan has no algorithm, which
     * conv_algo_get reports from now on (1, so conv_ex can fall back to a
     * packed output).  Nothing ran, so out is as Find left it. */
    if (first && refused(st)) {
        a->none = 1;
        a->why = st;
        return no_algorithm(a);
    }
    return cudnn_check(st, run_name(a->dir));
}

// ----------------------------------------------------------------------------
// the ops

/* The convolution itself: x = in, filter OIHW, y = out. */
static void geom_conv(struct conv_geom *g, const struct conv_shape *s)
{
    struct conv_geom t = {s->n,    s->cin,  s->h,   s->w,   s->cout,   s->k,      s->k,
                          s->hout, s->wout, s->pad, s->pad, s->stride, s->stride, 0};
    *g = t;
}

/* The convolution a transposed conv is the data gradient of: x = its output
 * [n,cout,hout,wout], filter IOHW read as [K=cin, C=cout, k, k], y = its
 * input [n,cin,h,w]. */
static void geom_convt(struct conv_geom *g, const struct conv_shape *s)
{
    struct conv_geom t = {s->n, s->cout, s->hout, s->wout, s->cin,    s->k,      s->k,
                          s->h, s->w,    s->pad,  s->pad,  s->stride, s->stride, 0};
    *g = t;
}

static int shape_ok(const struct conv_shape *s, const char *name, const char *op)
{
    if (!s || s->n < 1 || s->cin < 1 || s->h < 1 || s->w < 1 || s->cout < 1 || s->hout < 1 || s->wout < 1 ||
        s->k < 1 || s->stride < 1 || s->pad < 0 || s->out_pad < 0)
        return err_set("cuda: %s %s: bad shape", name, op);
    return 0;
}

static int plan(struct backend *be, const struct conv_geom *g, enum conv_dir dir, struct conv_algo **a,
                const char *name, const char *op)
{
    int rc = conv_algo_get(be, g, dir, be->precision, a);
    if (rc > 0)
        return err_wrap("%s %s", name, op);
    return rc;
}

static int half_precision(struct backend *be)
{
    return be->precision != BACKEND_FP32;
}

static size_t max_size(size_t a, size_t b)
{
    return a > b ? a : b;
}

/* The ws bytes a plan needs (0 when there is none). */
static size_t plan_ws(const struct conv_algo *a)
{
    return a ? conv_algo_ws_bytes(a) : 0;
}

/* A Conv2d or a ConvTranspose2d, in terms of the convolution of its plans:
 *   Conv2d:  forward        FWD         (x = in, w)    -> y = out
 *            input grad     BWD_DATA    (w, y = dout)  -> x = din
 *            filter grad    BWD_FILTER  (x = in, y = dout)
 *   ConvT2d: forward        BWD_DATA    (w, y = in)    -> x = out
 *            input grad     FWD         (x = dout, w)  -> y = din
 *            filter grad    BWD_FILTER  (x = dout, y = in)
 * so cuDNN's two operands are (in, w), (w, dout) and (in, dout) for a
 * Conv2d, and those pairs swapped for a ConvTranspose2d. */
struct conv_layer {
    const char *name; /* for errors: "<name> forward", "<name> backward-data" ... */
    void (*geom)(struct conv_geom *g, const struct conv_shape *s);
    enum conv_dir fwd_dir;  /* the direction that computes out */
    enum conv_dir data_dir; /* and din */
    int transposed;         /* operands swapped, weight IOHW [cin][cout] (else OIHW [cout][cin]) */
};

static const struct conv_layer conv2d_layer = {"conv2d", geom_conv, CONV_FWD, CONV_BWD_DATA, 0};
static const struct conv_layer convt2d_layer = {"convt2d", geom_convt, CONV_BWD_DATA, CONV_FWD, 1};

/* conv_algo_run on the operands (p, q), or (q, p) for a transposed conv. */
static int run_pair(struct backend *be, const struct conv_layer *L, struct conv_algo *a, const void *p,
                    const void *q, void *out, float beta, void *ws, size_t ws_bytes)
{
    if (L->transposed)
        return conv_algo_run(be, a, q, p, out, beta, ws, ws_bytes);
    return conv_algo_run(be, a, p, q, out, beta, ws, ws_bytes);
}

/* A float tensor as [n, c, hw] and its 16-bit copy at h in the workspace. */
struct half_buf {
    char *h;
    int n, c;
    long hw;
};

/* The op's in [n,cin,h,w], out (or dout) [n,cout,hout,wout] and weight,
 * as cu_to_half sees them. */
static void half_shapes(const struct conv_layer *L, const struct conv_shape *s, struct half_buf *in,
                        struct half_buf *w, struct half_buf *out)
{
    long k2 = (long)s->k * s->k;
    *in = {NULL, s->n, s->cin, (long)s->h * s->w};
    *out = {NULL, s->n, s->cout, (long)s->hout * s->wout};
    /* OIHW [cout][cin][k][k] is [N=cout, C=cin, HW=k*k] and IOHW
     * [cin][cout][k][k] is [N=cin, C=cout, HW=k*k]: NHWC of either is KRSC */
    if (L->transposed)
        *w = {NULL, s->cin, s->cout, k2};
    else
        *w = {NULL, s->cout, s->cin, k2};
}

/* Append b's 16-bit buffer to a workspace of *total bytes: its offset. */
static size_t take_half(size_t *total, const struct half_buf *b)
{
    return conv_ws_take(total, (size_t)b->n * b->c * b->hw * 2);
}

static int to_half(struct backend *be, const struct half_buf *b, const float *src, int nhwc)
{
    return cu_to_half(be, b->h, src, b->n, b->c, b->hw, nhwc);
}

static int from_half(struct backend *be, float *dst, const struct half_buf *b, int nhwc, float beta)
{
    return cu_from_half(be, dst, b->h, b->n, b->c, b->hw, nhwc, beta);
}

/* to_half of the operands p and q in the order run_pair passes them. */
static int to_half_pair(struct backend *be, const struct conv_layer *L, const struct half_buf *p,
                        const float *p_src, const struct half_buf *q, const float *q_src, int nhwc)
{
    if (L->transposed)
        return to_half(be, q, q_src, nhwc) || to_half(be, p, p_src, nhwc);
    return to_half(be, p, p_src, nhwc) || to_half(be, q, q_src, nhwc);
}

static int conv_forward(struct backend *be, const struct conv_layer *L, float *out, const float *in,
                        const float *w, const float *b, const struct conv_shape *s)
{
    if (shape_ok(s, L->name, "forward"))
        return -1;
    if (!out || !in || !w)
        return err_set("cuda: %s forward: NULL tensor", L->name);
    struct conv_geom g;
    L->geom(&g, s);
    struct conv_algo *a;
    if (plan(be, &g, L->fwd_dir, &a, L->name, "forward"))
        return -1;
    struct half_buf I, W, O;
    half_shapes(L, s, &I, &W, &O);
    size_t total = conv_algo_ws_bytes(a);
    if (!half_precision(be)) {
        void *ws = cuda_ws(be, total);
        if (!ws || run_pair(be, L, a, in, w, out, 0.0f, ws, total))
            return -1;
    } else {
        size_t algo_ws = total;
        size_t oi = take_half(&total, &I);
        size_t ow = take_half(&total, &W);
        size_t oo = take_half(&total, &O);
        char *ws = (char *)cuda_ws(be, total);
        if (!ws)
            return -1;
        I.h = ws + oi, W.h = ws + ow, O.h = ws + oo;
        int nhwc = conv_algo_nhwc(a);
        if (to_half(be, &I, in, nhwc) || to_half(be, &W, w, nhwc) ||
            run_pair(be, L, a, I.h, W.h, O.h, 0.0f, ws, algo_ws) || from_half(be, out, &O, nhwc, 0.0f))
            return -1;
    }
    return b ? cu_add_bias(be, out, b, s->n, s->cout, O.hw) : 0;
}

/* Both backwards share one layout of the 16-bit buffers, each reused once
 * its first user is queued (the stream orders the reuse):
 *   G: dout                       [n, cout, hout, wout]
 *   A: in, then din (same size)
 *   C: the filter gradient, then the filter itself (same size)
 * The filter gradient goes first, so A can hold in before it holds din.  In
 * the conv's terms A is x (then dx) and G is y for a Conv2d, and the other
 * way round for a transposed one. */
static int conv_backward(struct backend *be, const struct conv_layer *L, float *din, float *dw, float *db,
                         const float *dout, const float *in, const float *w, const struct conv_shape *s)
{
    if (shape_ok(s, L->name, "backward"))
        return -1;
    if (!dout || (dw && !in) || (din && !w))
        return err_set("cuda: %s backward: NULL tensor", L->name);
    struct half_buf G, A, C;
    half_shapes(L, s, &A, &C, &G);
    if (db && cu_sum_bias(be, db, dout, s->n, s->cout, G.hw))
        return -1;
    if (!din && !dw)
        return 0;
    struct conv_geom g;
    L->geom(&g, s);
    struct conv_algo *af = NULL, *ad = NULL;
    if ((dw && plan(be, &g, CONV_BWD_FILTER, &af, L->name, "backward-filter")) ||
        (din && plan(be, &g, L->data_dir, &ad, L->name, "backward-data")))
        return -1;
    size_t algo_ws = max_size(plan_ws(af), plan_ws(ad)), total = algo_ws;
    if (!half_precision(be)) {
        void *ws = cuda_ws(be, total);
        if (!ws)
            return -1;
        if (dw && run_pair(be, L, af, in, dout, dw, 1.0f, ws, algo_ws))
            return -1;
        if (din && run_pair(be, L, ad, w, dout, din, 0.0f, ws, algo_ws))
            return -1;
        return 0;
    }
    size_t og = take_half(&total, &G);
    size_t oa = take_half(&total, &A);
    size_t oc = take_half(&total, &C);
    char *ws = (char *)cuda_ws(be, total);
    if (!ws)
        return -1;
    G.h = ws + og, A.h = ws + oa, C.h = ws + oc;
    int g_layout = -1; /* layout G was cast in (the plans may differ) */
    if (dw) {
        int nhwc = conv_algo_nhwc(af);
        if (to_half_pair(be, L, &A, in, &G, dout, nhwc) ||
            run_pair(be, L, af, A.h, G.h, C.h, 0.0f, ws, algo_ws) || from_half(be, dw, &C, nhwc, 1.0f))
            return -1;
        g_layout = nhwc;
    }
    if (din) {
        int nhwc = conv_algo_nhwc(ad);
        if (g_layout != nhwc && to_half(be, &G, dout, nhwc))
            return -1;
        if (to_half(be, &C, w, nhwc) || run_pair(be, L, ad, C.h, G.h, A.h, 0.0f, ws, algo_ws) ||
            from_half(be, din, &A, nhwc, 0.0f))
            return -1;
    }
    return 0;
}

int cu_conv2d_forward(struct backend *be, float *out, const float *in, const float *w, const float *b,
                      const struct conv_shape *s)
{
    return conv_forward(be, &conv2d_layer, out, in, w, b, s);
}

int cu_conv2d_backward(struct backend *be, float *din, float *dw, float *db, const float *dout,
                       const float *in, const float *w, const struct conv_shape *s)
{
    return conv_backward(be, &conv2d_layer, din, dw, db, dout, in, w, s);
}

int cu_convt2d_forward(struct backend *be, float *out, const float *in, const float *w, const float *b,
                       const struct conv_shape *s)
{
    return conv_forward(be, &convt2d_layer, out, in, w, b, s);
}

int cu_convt2d_backward(struct backend *be, float *din, float *dw, float *db, const float *dout,
                        const float *in, const float *w, const struct conv_shape *s)
{
    return conv_backward(be, &convt2d_layer, din, dw, db, dout, in, w, s);
}
