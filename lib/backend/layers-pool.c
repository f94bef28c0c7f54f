/*
 * layers-pool: argument checks and dispatch of the Inception ops to the
 * backend vtable (see layers-pool.h).
 */
#include "layers-pool.h"

#include "backend-impl.h"
#include "base/err.h"

int conv_ex_shape_init(struct conv_ex_shape *s, int n, int cin, int h, int w, int cout, int kh, int kw,
                       int sh, int sw, int ph, int pw)
{
    if (n < 1 || cin < 1 || cout < 1 || kh < 1 || kw < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0 || h < 1 ||
        w < 1)
        return err_set("conv_ex: bad arguments");
    if (h + 2 * ph < kh || w + 2 * pw < kw)
        return err_set("conv_ex: input %dx%d too small for kernel %dx%d", h, w, kh, kw);
    *s = (struct conv_ex_shape){.n = n,
                                .cin = cin,
                                .h = h,
                                .w = w,
                                .cout = cout,
                                .kh = kh,
                                .kw = kw,
                                .sh = sh,
                                .sw = sw,
                                .ph = ph,
                                .pw = pw};
    s->hout = (h + 2 * ph - kh) / sh + 1;
    s->wout = (w + 2 * pw - kw) / sw + 1;
    s->out_bstride = (long)cout * s->hout * s->wout;
    return 0;
}

size_t conv_ex_workspace_bytes(backend_t be, const struct conv_ex_shape *s)
{
    if (!be || !be->iface->conv_ex_workspace)
        return 0;
    return be->iface->conv_ex_workspace(be, s);
}

int conv_ex_forward(backend_t be, float *out, const float *in, const float *w, const float *b,
                    const struct conv_ex_shape *s, float *ws)
{
    BACKEND_NEED(be, conv_ex_forward);
    if (s->out_bstride < (long)s->cout * s->hout * s->wout)
        return err_set("conv_ex: output batch stride %ld below %d x %d x %d", s->out_bstride, s->cout,
                       s->hout, s->wout);
    return be->iface->conv_ex_forward(be, out, in, w, b, s, ws);
}

int pool2d_shape_init(struct pool_shape *s, int n, int c, int h, int w, int k, int stride, int pad,
                      enum pool_kind kind)
{
    if (n < 1 || c < 1 || h < 1 || w < 1 || k < 1 || stride < 1 || pad < 0 || 2 * pad > k)
        return err_set("pool2d: bad arguments");
    if (h + 2 * pad < k || w + 2 * pad < k)
        return err_set("pool2d: input %dx%d too small for window %d", h, w, k);
    if (kind != POOL_MAX && kind != POOL_AVG && kind != POOL_AVG_EXCL_PAD)
        return err_set("pool2d: unknown kind %d", (int)kind);
    *s = (struct pool_shape){
        .n = n, .c = c, .h = h, .w = w, .k = k, .stride = stride, .pad = pad, .kind = kind};
    s->hout = (h + 2 * pad - k) / stride + 1;
    s->wout = (w + 2 * pad - k) / stride + 1;
    s->out_bstride = (long)c * s->hout * s->wout;
    return 0;
}

int pool2d_forward(backend_t be, float *out, const float *in, const struct pool_shape *s)
{
    BACKEND_NEED(be, pool2d_forward);
    if (s->out_bstride < (long)s->c * s->hout * s->wout)
        return err_set("pool2d: output batch stride %ld too small", s->out_bstride);
    return be->iface->pool2d_forward(be, out, in, s);
}

int resize_bilinear_forward(backend_t be, float *out, const float *in, int planes, int h, int w, int hout,
                            int wout, enum resize_mode mode, float mul, float add)
{
    BACKEND_NEED(be, resize_bilinear);
    if (planes < 1 || h < 1 || w < 1 || hout < 1 || wout < 1)
        return err_set("resize_bilinear: bad size %dx%d -> %dx%d", w, h, wout, hout);
    if (mode != RESIZE_HALF_PIXEL && mode != RESIZE_TF1)
        return err_set("resize_bilinear: unknown mode %d", (int)mode);
    return be->iface->resize_bilinear(be, out, in, planes, h, w, hout, wout, mode, mul, add);
}
