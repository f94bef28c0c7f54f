/*
 * conv-ex: the FID Inception network's general convolution (lib/backend/layers-pool.h)
 * on cuDNN: rectangular kernels, per-axis stride and padding, an optional
 * ReLU, and an output batch stride so each branch of an Inception block
 * writes straight into its channel slice of the concatenated tensor.
 *
 * Inference only, and always float with FMA math whatever be->precision:
 * the FID statistics are compared against reference ones computed in
 * float, so they must not depend on the training precision.
 *
 * The output slice is described to cuDNN as a strided tensor (nStride =
 * out_bstride), so the convolution writes in place; only should cuDNN have
 * no algorithm for that stride does it write a packed copy into the
 * workspace, which the bias kernel then scatters into the slice.  Bias and
 * ReLU are one small kernel after the convolution, with the CPU backend's
 * ReLU (NaN gives 0).  Plans come from conv.cu's cache (conv-cache.h).
 */
#include "conv-cache.h"

#include <limits.h>

#define EX_THREADS 256
#define GRID_Y_MAX 65535

/* dst[img][ch][j] = relu?(src[img][ch][j] + b[ch]) over the n images' c
 * planes of hw; the image strides are separate so src may be packed and dst
 * a slice (or both the same slice, in place: each element is read and
 * written by one thread). */
__global__ void bias_relu_k(float *dst, long dst_bstride, const float *src, long src_bstride, const float *b,
                            int c, long planes, long hw, int relu)
{
    for (long pl = blockIdx.y; pl < planes; pl += gridDim.y) {
        long img = pl / c;
        int ch = (int)(pl % c);
        const float *s = src + img * src_bstride + (long)ch * hw;
        float *d = dst + img * dst_bstride + (long)ch * hw;
        float bv = b ? b[ch] : 0.0f;
        for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < hw;
             i += (long)gridDim.x * blockDim.x) {
            float v = b ? s[i] + bv : s[i];
            d[i] = relu && !(v > 0.0f) ? 0.0f : v;
        }
    }
}

static int bias_relu(struct backend *be, float *dst, long dst_bstride, const float *src, long src_bstride,
                     const float *b, int n, int c, long hw, int relu)
{
    long planes = (long)n * c;
    long per_plane = (hw + EX_THREADS - 1) / EX_THREADS;
    long want_x = ((long)cuda_ctx_of(be)->sm_count * 8 + planes - 1) / planes;
    if (want_x < 1)
        want_x = 1;
    dim3 grid((unsigned)(per_plane < want_x ? per_plane : want_x),
              (unsigned)(planes < GRID_Y_MAX ? planes : GRID_Y_MAX));
    bias_relu_k<<<grid, EX_THREADS, 0, cuda_ctx_of(be)->stream>>>(dst, dst_bstride, src, src_bstride, b, c,
                                                                  planes, hw, relu);
    return cuda_launched("conv_ex bias/relu");
}

size_t cu_conv_ex_workspace(struct backend *be, const struct conv_ex_shape *s)
{
    /* the cuDNN workspace (and any packed copy) come from cuda_ws */
    (void)be;
    (void)s;
    return 0;
}

int cu_conv_ex_forward(struct backend *be, float *out, const float *in, const float *w, const float *b,
                       const struct conv_ex_shape *s, float *ws_unused)
{
    (void)ws_unused; /* cu_conv_ex_workspace asks for none */
    if (!s || !out || !in || !w)
        return err_set("cuda: conv_ex: NULL argument");
    long hwo = (long)s->hout * s->wout, packed = (long)s->cout * hwo;
    if (s->n < 1 || s->cin < 1 || s->h < 1 || s->w < 1 || s->cout < 1 || s->hout < 1 || s->wout < 1 ||
        s->kh < 1 || s->kw < 1 || s->sh < 1 || s->sw < 1 || s->ph < 0 || s->pw < 0 || s->out_bstride < packed)
        return err_set("cuda: conv_ex: bad shape");
    struct conv_geom g = {s->n,    s->cin,  s->h,  s->w,  s->cout, s->kh, s->kw,
                          s->hout, s->wout, s->ph, s->pw, s->sh,   s->sw, 0};
    /* 1: try the strided output descriptor; -1: the packed copy + scatter;
     * 0: the output is packed, nothing to scatter */
    int strided = s->out_bstride != packed;
    if (strided && s->out_bstride > INT_MAX)
        strided = -1; /* cuDNN's strides are int: only the packed copy can do it */
    for (;;) {
        g.y_nstride = strided == 1 ? s->out_bstride : 0;
        struct conv_algo *a = NULL;
        int rc = conv_algo_get(be, &g, CONV_FWD, BACKEND_FP32, &a);
        if (rc < 0)
            return -1;
        if (rc > 0) {
            if (strided == 1) {
                strided = -1;
                continue;
            }
            return err_wrap("conv_ex");
        }
        int copy = strided == -1;
        size_t total = conv_algo_ws_bytes(a), algo_ws = total, oy = 0;
        if (copy)
            oy = conv_ws_take(&total, (size_t)s->n * packed * sizeof(float));
        char *ws = (char *)cuda_ws(be, total);
        if (!ws)
            return -1;
        float *y = copy ? (float *)(ws + oy) : out;
        rc = conv_algo_run(be, a, in, w, y, 0.0f, ws, algo_ws);
        if (rc > 0 && strided == 1) {
            /* cuDNN listed an algorithm for the strided output but refused
             * it on the first run: the plan now says so, use the copy */
            strided = -1;
            continue;
        }
        if (rc)
            return -1;
        if (copy)
            return bias_relu(be, out, s->out_bstride, y, packed, b, s->n, s->cout, hwo, s->relu);
        if (!b && !s->relu)
            return 0;
        return bias_relu(be, out, s->out_bstride, out, s->out_bstride, b, s->n, s->cout, hwo, s->relu);
    }
}
