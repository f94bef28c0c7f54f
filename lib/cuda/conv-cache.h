/*
 * conv-cache: the cuDNN convolution plans shared by conv.cu (training convs,
 * any precision) and conv-ex.cu (Inception convs, fp32).  Every cuDNN call is
 * described in terms of ONE forward convolution y = conv(x, w):
 *
 *     x [n, c, h, w]    w [k, c, kh, kw]    y [n, k, oh, ow]
 *
 * and a direction: its forward, its data gradient (x from y) or its filter
 * gradient (w from x and y).  A transposed convolution is the data gradient
 * of the convolution that maps its OUTPUT grid to its input grid, so it
 * needs no separate kind of plan.
 *
 * A plan (struct conv_algo) holds the descriptors and, after its first run,
 * the algorithm cuDNN's FindEx timed fastest.  Plans live in the backend's
 * cache (ctx->convs) until cu_conv_cache_free(): one is made per
 * geometry + direction + precision, and the search runs once per plan.
 */
#pragma once

#include "cuda-impl.h"

enum conv_dir {
    CONV_FWD,        /* y = conv(x, w) */
    CONV_BWD_DATA,   /* x = conv's data gradient of y (w given) */
    CONV_BWD_FILTER, /* w = conv's filter gradient (x, y given) */
};

struct conv_geom {
    int n, c, h, w; /* x */
    int k, kh, kw;  /* w: [k, c, kh, kw] */
    int oh, ow;     /* y: [n, k, oh, ow]; must be what cuDNN computes from x, w and the padding */
    int ph, pw;     /* zero padding */
    int sh, sw;     /* strides */
    long y_nstride; /* fp32 only: elements from one image of y to the next; 0 = packed */
};

struct conv_algo;

/* The plan for (g, dir, prec), made on first use.  prec BACKEND_FP32: float
 * NCHW tensors, FMA math (no TF32).  BF16/FP16: 16-bit tensors and filter,
 * NHWC where cuDNN has an algorithm for it (else NCHW: conv_algo_nhwc says
 * which), float accumulation, tensor-op math.  Returns 0 with *out set, 1
 * when cuDNN has no algorithm for this configuration (err says so, but the
 * caller decides whether that is an error), -1 after err_set. */
int conv_algo_get(struct backend *be, const struct conv_geom *g, enum conv_dir dir,
                  enum backend_precision prec, struct conv_algo **out);

/* 1 when the plan's 16-bit tensors (x, y) and filter are NHWC (filter KRSC). */
int conv_algo_nhwc(const struct conv_algo *a);

/* Workspace bytes the next conv_algo_run of a needs (larger before the first
 * run, which also times the candidates).  Always > 0. */
size_t conv_algo_ws_bytes(const struct conv_algo *a);

/* Run the plan, with cuDNN's operand order per direction:
 *   CONV_FWD:        in1 = x, in2 = w,  out = y
 *   CONV_BWD_DATA:   in1 = w, in2 = y,  out = x  (the data gradient)
 *   CONV_BWD_FILTER: in1 = x, in2 = y,  out = w  (the filter gradient)
 * out = result + beta * out (beta 0: out is not read).  ws: at least
 * conv_algo_ws_bytes(a) bytes of device memory.  On the first run the
 * candidate algorithms are timed on these same buffers (out is clobbered, so
 * a beta=1 run times into scratch at the end of ws instead).  0; 1 when
 * the first run finds that cuDNN refuses every algorithm it could choose
 * (err set as conv_algo_get's 1, which the plan reports from then on); -1
 * after err_set. */
int conv_algo_run(struct backend *be, struct conv_algo *a, const void *in1, const void *in2, void *out,
                  float beta, void *ws, size_t ws_bytes);

/* Bytes kept between regions of one op's workspace (cuDNN and vector loads
 * want aligned buffers), and the offset of a new region of `bytes` appended
 * to a workspace of *total bytes (which grows to include it). */
#define CONV_WS_ALIGN 256
static inline size_t conv_ws_take(size_t *total, size_t bytes)
{
    size_t off = (*total + CONV_WS_ALIGN - 1) / CONV_WS_ALIGN * CONV_WS_ALIGN;
    *total = off + bytes;
    return off;
}
