/*
 * backend-cpu-half: the CPU backend's convolutions at be->precision.  In
 * FP32 they are the float kernels of backend-cpu.c.  BF16 runs on the CPU's
 * bf16 units through oneDNN (lib/cpu/cpu-dnnl.c) when cpu_dnnl_bf16_available().
 * Otherwise, and always for FP16, this file emulates what tensor cores do
 * (backend.h): the operands are rounded to the 16-bit type into scratch
 * copies, the float kernel runs on the copies, and its result is rounded
 * again; biases are added and reduced in float from the unrounded tensors.
 * The emulation exists for correctness, not speed: it lets the
 * mixed-precision trainer (loss scaling included) run and be tested on any
 * machine, and gives the 16-bit paths on bf16 units and on the GPU a
 * reference whose only difference is the order of the float sums.
 */

#include "cpu-gemm.h"
#include "cpu-impl.h"
#include "cpu-dnnl.h"
#include "base/half.h"

typedef int (*fwd_fn)(struct backend *, float *, const float *, const float *, const float *,
                      const struct conv_shape *);
typedef int (*bwd_fn)(struct backend *, float *, float *, float *, const float *, const float *,
                      const float *, const struct conv_shape *);
typedef int (*hw_fwd_fn)(struct cpu_dnnl *, enum backend_precision, float *, const float *, const float *,
                         const float *, const struct conv_shape *);
typedef int (*hw_bwd_fn)(struct cpu_dnnl *, enum backend_precision, float *, float *, float *, const float *,
                         const float *, const float *, const struct conv_shape *);

/* 1 when this call runs on the bf16 units (*d set, or -1 with err_set when
 * oneDNN could not start), 0 when it is emulated or float. */
static int on_bf16_units(struct backend *be, struct cpu_dnnl **d)
{
    if (be->precision != BACKEND_BF16 || !cpu_dnnl_bf16_available())
        return 0;
    *d = cpu_dnnl_of(be);
    return *d ? 1 : -1;
}

/* dst[i] = round(src[i]) to the 16-bit type (dst == src allowed). */
static void round_n(float *dst, const float *src, long n, enum backend_precision p)
{
    if (p == BACKEND_BF16) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++)
            dst[i] = bf16_to_f32(bf16_from_f32(src[i]));
    } else {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++)
            dst[i] = half_to_f32(half_from_f32(src[i]));
    }
}

/* Element counts shared by conv2d and convt2d: the weight tensor has
 * cin*cout*k*k elements in both layouts. */
static long in_numel(const struct conv_shape *s)
{
    return (long)s->n * s->cin * s->h * s->w;
}
static long out_numel(const struct conv_shape *s)
{
    return (long)s->n * s->cout * s->hout * s->wout;
}
static long w_numel(const struct conv_shape *s)
{
    return (long)s->cin * s->cout * s->k * s->k;
}

static int forward(fwd_fn f32, hw_fwd_fn hw, struct backend *be, float *out, const float *in, const float *w,
                   const float *b, const struct conv_shape *s)
{
    enum backend_precision p = be->precision;
    struct cpu_dnnl *d = NULL;
    int units = on_bf16_units(be, &d);
    if (units)
        return units < 0 ? -1 : hw(d, p, out, in, w, b, s);
    if (p == BACKEND_FP32)
        return f32(be, out, in, w, b, s);
    long ni = in_numel(s), nw = w_numel(s);
    float *xr = cpu_half_scratch(be, (size_t)(ni + nw));
    if (!xr)
        return -1;
    float *wr = xr + ni;
    round_n(xr, in, ni, p);
    round_n(wr, w, nw, p);
    if (f32(be, out, xr, wr, NULL, s))
        return -1;
    round_n(out, out, out_numel(s), p);
    cpu_add_bias(out, b, s->n, s->cout, (long)s->hout * s->wout);
    return 0;
}

static int backward(bwd_fn f32, hw_bwd_fn hw, struct backend *be, float *din, float *dw, float *db,
                    const float *dout, const float *in, const float *w, const struct conv_shape *s)
{
    enum backend_precision p = be->precision;
    struct cpu_dnnl *d = NULL;
    int units = on_bf16_units(be, &d);
    if (units)
        return units < 0 ? -1 : hw(d, p, din, dw, db, dout, in, w, s);
    if (p == BACKEND_FP32)
        return f32(be, din, dw, db, dout, in, w, s);
    long ni = in_numel(s), no = out_numel(s), nw = w_numel(s);
    /* scratch: rounded dout | rounded in | rounded w | this call's dw */
    float *gr = cpu_half_scratch(be, (size_t)(no + ni + 2 * nw));
    if (!gr)
        return -1;
    float *xr = gr + no, *wr = xr + ni, *dwc = wr + nw;
    round_n(gr, dout, no, p);
    if (dw) {
        round_n(xr, in, ni, p);
        for (long i = 0; i < nw; i++)
            dwc[i] = 0.0f;
    }
    if (din)
        round_n(wr, w, nw, p);
    if (f32(be, din, dw ? dwc : NULL, NULL, gr, xr, wr, s))
        return -1;
    if (din)
        round_n(din, din, ni, p);
    if (dw) {
        round_n(dwc, dwc, nw, p);
        for (long i = 0; i < nw; i++)
            dw[i] += dwc[i];
    }
    cpu_sum_bias(db, dout, s->n, s->cout, (long)s->hout * s->wout);
    return 0;
}

int cpu_conv2d_forward(struct backend *be, float *out, const float *in, const float *w, const float *b,
                       const struct conv_shape *s)
{
    return forward(cpu_conv2d_forward_f32, cpu_dnnl_conv2d_forward, be, out, in, w, b, s);
}

int cpu_conv2d_backward(struct backend *be, float *din, float *dw, float *db, const float *dout,
                        const float *in, const float *w, const struct conv_shape *s)
{
    return backward(cpu_conv2d_backward_f32, cpu_dnnl_conv2d_backward, be, din, dw, db, dout, in, w, s);
}

int cpu_convt2d_forward(struct backend *be, float *out, const float *in, const float *w, const float *b,
                        const struct conv_shape *s)
{
    return forward(cpu_convt2d_forward_f32, cpu_dnnl_convt2d_forward, be, out, in, w, b, s);
}

int cpu_convt2d_backward(struct backend *be, float *din, float *dw, float *db, const float *dout,
                         const float *in, const float *w, const struct conv_shape *s)
{
    return backward(cpu_convt2d_backward_f32, cpu_dnnl_convt2d_backward, be, din, dw, db, dout, in, w, s);
}
