/*
 * layers-pool: the inference ops the FID Inception network needs beyond
 * lib/backend/layers.h, each a checked dispatch through the backend vtable (CPU:
 * lib/cpu/backend-cpu-pool.c):
 *
 *   - conv_ex: a convolution with a rectangular kernel (1x7, 7x1, 1x3 ...),
 *     per-axis stride and padding, an optional fused ReLU, and an output
 *     batch stride, so the branches of an Inception block write straight
 *     into their channel slice of the concatenated output (no concat copy);
 *   - pool2d: max pooling and average pooling with or without the padding
 *     in the divisor (PyTorch's count_include_pad), floor mode;
 *   - resize_bilinear: PyTorch's F.interpolate(bilinear, align_corners=False)
 *     or TensorFlow 1.x's legacy resize (torch-fidelity's
 *     interpolate_bilinear_2d_like_tensorflow1x), followed by out*mul + add.
 *
 * Forward only (no backward: nothing trains through these).  Layouts are
 * PyTorch's: NCHW activations, OIHW weights.  All pointers are device
 * pointers.  Every op returns 0, or -1 with err_set().
 */
#pragma once

#include <stddef.h>

#include "layers.h"

// ----------------------------------------------------------------------------
// General convolution

struct conv_ex_shape {
    int n, cin, h, w;     /* input [n,cin,h,w], contiguous */
    int cout, hout, wout; /* output [n,cout,hout,wout] */
    int kh, kw;           /* kernel [cout,cin,kh,kw] */
    int sh, sw, ph, pw;   /* stride and zero padding per axis */
    long out_bstride;     /* floats from image i's output to image i+1's (>= cout*hout*wout) */
    int relu;             /* 1: out = max(0, conv + b) */
};

/* Fill s (hout/wout computed, out_bstride = cout*hout*wout, relu 0).  -1 when
 * an argument is out of range or the output would be empty. */
int conv_ex_shape_init(struct conv_ex_shape *s, int n, int cin, int h, int w, int cout, int kh, int kw,
                       int sh, int sw, int ph, int pw);
/* Bytes of scratch one conv_ex_forward call needs on this backend. */
size_t conv_ex_workspace_bytes(backend_t be, const struct conv_ex_shape *s);
/* out [n, (out_bstride)] = conv(in [n,cin,h,w], w [cout,cin,kh,kw]) + b [cout] (b may be
 * NULL), ReLU when s->relu.  ws: conv_ex_workspace_bytes(be, s) bytes of device memory (may be
 * NULL when that is 0).  Floats of out between images' slices are left alone. */
int conv_ex_forward(backend_t be, float *out, const float *in, const float *w, const float *b,
                    const struct conv_ex_shape *s, float *ws);

// ----------------------------------------------------------------------------
// Pooling (square window k, stride, zero padding pad; floor mode)

enum pool_kind {
    POOL_MAX,          /* padding acts as -inf; NaN propagates (PyTorch) */
    POOL_AVG,          /* count_include_pad=True: divide by the window clipped to the padded image */
    POOL_AVG_EXCL_PAD, /* count_include_pad=False: divide by the in-image taps */
};

struct pool_shape {
    int n, c, h, w; /* input [n,c,h,w], contiguous */
    int hout, wout;
    int k, stride, pad;
    long out_bstride; /* floats between images of the output (>= c*hout*wout) */
    enum pool_kind kind;
};

/* Fill s (out_bstride = c*hout*wout).  -1 on bad arguments (pad > k/2 as PyTorch refuses). */
int pool2d_shape_init(struct pool_shape *s, int n, int c, int h, int w, int k, int stride, int pad,
                      enum pool_kind kind);
/* out [n, (out_bstride)] = pool(in [n,c,h,w]).  Sums run in float in window order (row by
 * row) and are divided once, as PyTorch's CPU kernel. */
int pool2d_forward(backend_t be, float *out, const float *in, const struct pool_shape *s);

// ----------------------------------------------------------------------------
// Bilinear resize of `planes` planes [h,w] -> [hout,wout]

enum resize_mode {
    /* PyTorch F.interpolate(mode="bilinear", align_corners=False, antialias=False): half-pixel
     * centres, src = max(0, (d+0.5)*in/out - 0.5); same size copies. */
    RESIZE_HALF_PIXEL,
    /* TensorFlow 1.x resize_bilinear(align_corners=False) as torch-fidelity's "slow" method:
     * src = d*(float)(in/out), lo = trunc(src), x first then y, a + (b-a)*w. */
    RESIZE_TF1,
};

/* out [planes,hout,wout] = resize(in [planes,h,w]) * mul + add (mul and add in float, no
 * fused multiply-add: 2x-1 and (x-128)/128 come out as PyTorch writes them). */
int resize_bilinear_forward(backend_t be, float *out, const float *in, int planes, int h, int w, int hout,
                            int wout, enum resize_mode mode, float mul, float add);
