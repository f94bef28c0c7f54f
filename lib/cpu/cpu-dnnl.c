/*
 * cpu-dnnl: see cpu-dnnl.h.  Every operation is one oneDNN primitive with
 * three operands, two read and one written; each operand has the caller's
 * float tensor ("user", plain layout, its pointer set per call) and the
 * primitive's own ("inner": bf16 and the blocked layout the kernel picked),
 * joined by a reorder.  Inner tensors and scratchpads of every primitive
 * start at the arena's base: calls run one at a time.  A weight gradient is written to a float scratch in
 * the arena first, because ours is accumulated and oneDNN's is not.
 */
#include "cpu-dnnl.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/layers.h"
#include "cpu-gemm.h"
#include "base/err.h"

enum dop { CONV_FWD, CONV_BWD_D, CONV_BWD_W, DECONV_FWD, DECONV_BWD_D, DECONV_BWD_W };

/* A primitive with its scratchpad, which lives in the arena (user mode:
 * oneDNN's own global scratchpad would be shared by serve's workers). */
struct step {
    dnnl_primitive_t prim;
    dnnl_memory_t pad; /* NULL when it needs none */
    size_t pad_off;
};

struct operand {
    int arg;             /* DNNL_ARG_* of the main primitive */
    dnnl_memory_t user;  /* float, plain */
    dnnl_memory_t inner; /* the primitive's; == user when layout and type agree */
    struct step reorder; /* user -> inner for inputs, inner -> user for the output */
    size_t off;          /* inner's place in the arena */
};

struct prim {
    enum dop op;
    enum backend_precision p;
    struct conv_shape s;
    struct step main;
    struct operand x[3]; /* two inputs, the output */
    size_t tmp_off;      /* weight gradients: the float result before it is accumulated */
    size_t bytes;        /* arena bytes this primitive needs */
    long gen;            /* the arena generation inner handles point into */
    struct prim *next;
};

struct cpu_dnnl {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    struct prim *cache;
    char *arena;
    size_t arena_bytes;
    long gen;
    long *allocs;
};

static int dnnl_fail(const char *what, dnnl_status_t st)
{
    return err_set("oneDNN: %s: %s", what, dnnl_status2str(st));
}

#define DNNL_TRY(call)                                                                                       \
    do {                                                                                                     \
        dnnl_status_t st_ = (call);                                                                          \
        if (st_ != dnnl_success)                                                                             \
            return dnnl_fail(#call, st_);                                                                    \
    } while (0)

int cpu_dnnl_bf16_available(void)
{
    const char *env = getenv("AGING_CPU_BF16");
    if (env && strcmp(env, "0") == 0)
        return 0;
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

const char *cpu_dnnl_isa_name(void)
{
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    if ((isa & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx)
        return "AMX";
    if ((isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16)
        return "AVX512-BF16";
    if ((isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core)
        return "AVX-512";
    if ((isa & dnnl_cpu_isa_avx2) == dnnl_cpu_isa_avx2)
        return "AVX2";
    return "SSE4.1";
}

struct cpu_dnnl *cpu_dnnl_new(long *allocs)
{
    struct cpu_dnnl *d = calloc(1, sizeof *d);
    if (!d) {
        err_set("cpu_dnnl_new: out of memory");
        return NULL;
    }
    d->allocs = allocs;
    dnnl_status_t st = dnnl_engine_create(&d->engine, dnnl_cpu, 0);
    if (st == dnnl_success)
        st = dnnl_stream_create(&d->stream, d->engine, dnnl_stream_default_flags);
    if (st != dnnl_success) {
        dnnl_fail("engine", st);
        cpu_dnnl_free(d);
        return NULL;
    }
    return d;
}

static void step_free(struct step *t)
{
    dnnl_primitive_destroy(t->prim);
    dnnl_memory_destroy(t->pad);
}

static void prim_free(struct prim *q)
{
    if (!q)
        return;
    step_free(&q->main);
    for (int i = 0; i < 3; i++) {
        struct operand *o = &q->x[i];
        step_free(&o->reorder);
        if (o->inner != o->user)
            dnnl_memory_destroy(o->inner);
        dnnl_memory_destroy(o->user);
    }
    free(q);
}

void cpu_dnnl_free(struct cpu_dnnl *d)
{
    if (!d)
        return;
    for (struct prim *q = d->cache, *next; q; q = next) {
        next = q->next;
        prim_free(q);
    }
    free(d->arena);
    if (d->stream)
        dnnl_stream_destroy(d->stream);
    if (d->engine)
        dnnl_engine_destroy(d->engine);
    free(d);
}

// ----------------------------------------------------------------------------
// building a primitive

/* An attribute asking for user-provided scratchpads (free with _destroy). */
static int user_scratchpad(dnnl_primitive_attr_t *attr)
{
    DNNL_TRY(dnnl_primitive_attr_create(attr));
    dnnl_status_t st = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    if (st != dnnl_success) {
        dnnl_primitive_attr_destroy(*attr);
        return dnnl_fail("scratchpad mode", st);
    }
    return 0;
}

static int is_deconv(enum dop op)
{
    return op >= DECONV_FWD;
}

/* The operation's descriptor with operands of type dt in layouts left to oneDNN. */
static int op_desc(dnnl_convolution_desc_t *cd, enum dop op, dnnl_data_type_t dt, const struct conv_shape *s)
{
    dnnl_dims_t src = {s->n, s->cin, s->h, s->w}, dst = {s->n, s->cout, s->hout, s->wout};
    dnnl_dims_t wei = {s->cout, s->cin, s->k, s->k}, str = {s->stride, s->stride}, pl = {s->pad, s->pad};
    /* the right/bottom padding that makes the sizes agree exactly (oneDNN checks it); for a
     * transposed convolution it is pad - out_pad */
    dnnl_dims_t pr;
    if (is_deconv(op)) {
        pr[0] = (long)(s->h - 1) * s->stride + s->k - s->hout - s->pad;
        pr[1] = (long)(s->w - 1) * s->stride + s->k - s->wout - s->pad;
    } else {
        pr[0] = (long)(s->hout - 1) * s->stride + s->k - s->h - s->pad;
        pr[1] = (long)(s->wout - 1) * s->stride + s->k - s->w - s->pad;
    }
    dnnl_memory_desc_t ms, mw, md;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&ms, 4, src, dt, dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&mw, 4, wei, dt, dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&md, 4, dst, dt, dnnl_format_tag_any));
    switch (op) {
    case CONV_FWD:
        DNNL_TRY(dnnl_convolution_forward_desc_init(cd, dnnl_forward_training, dnnl_convolution_direct, &ms,
                                                    &mw, NULL, &md, str, pl, pr));
        return 0;
    case CONV_BWD_D:
        DNNL_TRY(dnnl_convolution_backward_data_desc_init(cd, dnnl_convolution_direct, &ms, &mw, &md, str, pl,
                                                          pr));
        return 0;
    case CONV_BWD_W:
        DNNL_TRY(dnnl_convolution_backward_weights_desc_init(cd, dnnl_convolution_direct, &ms, &mw, NULL, &md,
                                                             str, pl, pr));
        return 0;
    case DECONV_FWD:
        DNNL_TRY(dnnl_deconvolution_forward_desc_init(cd, dnnl_forward_training, dnnl_deconvolution_direct,
                                                      &ms, &mw, NULL, &md, str, pl, pr));
        return 0;
    case DECONV_BWD_D:
        DNNL_TRY(dnnl_deconvolution_backward_data_desc_init(cd, dnnl_deconvolution_direct, &ms, &mw, &md, str,
                                                            pl, pr));
        return 0;
    case DECONV_BWD_W:
        DNNL_TRY(dnnl_deconvolution_backward_weights_desc_init(cd, dnnl_deconvolution_direct, &ms, &mw, NULL,
                                                               &md, str, pl, pr));
        return 0;
    }
    return err_set("cpu_dnnl: unknown operation %d", (int)op);
}

/* The primitive descriptor; backward ones need their forward one as a hint. */
static int op_pd(dnnl_primitive_desc_t *pd, struct cpu_dnnl *d, enum dop op, dnnl_data_type_t dt,
                 const struct conv_shape *s)
{
    dnnl_convolution_desc_t cd;
    if (op_desc(&cd, op, dt, s))
        return -1;
    enum dop fwd = is_deconv(op) ? DECONV_FWD : CONV_FWD;
    dnnl_primitive_desc_t hint = NULL;
    if (op != fwd && op_pd(&hint, d, fwd, dt, s))
        return -1;
    dnnl_primitive_attr_t attr;
    if (user_scratchpad(&attr)) {
        dnnl_primitive_desc_destroy(hint);
        return -1;
    }
    dnnl_status_t st = dnnl_primitive_desc_create(pd, &cd, attr, d->engine, hint);
    dnnl_primitive_attr_destroy(attr);
    if (hint)
        dnnl_primitive_desc_destroy(hint);
    return st == dnnl_success ? 0 : dnnl_fail("primitive_desc_create", st);
}

/* The user's float tensor of operand arg: plain NCHW, OIHW or (deconv) IOHW. */
static int user_md(dnnl_memory_desc_t *m, int arg, enum dop op, const struct conv_shape *s)
{
    if (arg == DNNL_ARG_WEIGHTS || arg == DNNL_ARG_DIFF_WEIGHTS) {
        dnnl_dims_t dims = {s->cout, s->cin, s->k, s->k};
        DNNL_TRY(dnnl_memory_desc_init_by_tag(m, 4, dims, dnnl_f32, is_deconv(op) ? dnnl_iohw : dnnl_oihw));
    } else if (arg == DNNL_ARG_SRC || arg == DNNL_ARG_DIFF_SRC) {
        dnnl_dims_t dims = {s->n, s->cin, s->h, s->w};
        DNNL_TRY(dnnl_memory_desc_init_by_tag(m, 4, dims, dnnl_f32, dnnl_nchw));
    } else {
        dnnl_dims_t dims = {s->n, s->cout, s->hout, s->wout};
        DNNL_TRY(dnnl_memory_desc_init_by_tag(m, 4, dims, dnnl_f32, dnnl_nchw));
    }
    return 0;
}

static size_t align64(size_t n)
{
    return (n + 63) / 64 * 64;
}

/* The primitive of pd, its scratchpad placed in q's share of the arena. */
static int make_step(struct step *t, struct prim *q, struct cpu_dnnl *d, const_dnnl_primitive_desc_t pd)
{
    DNNL_TRY(dnnl_primitive_create(&t->prim, pd));
    const dnnl_memory_desc_t *m = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t n = m ? dnnl_memory_desc_get_size(m) : 0;
    if (!n)
        return 0;
    DNNL_TRY(dnnl_memory_create(&t->pad, m, d->engine, DNNL_MEMORY_NONE));
    t->pad_off = q->bytes;
    q->bytes += align64(n);
    return 0;
}

static int make_operand(struct prim *q, struct cpu_dnnl *d, dnnl_primitive_desc_t pd, int i, int arg)
{
    struct operand *o = &q->x[i];
    o->arg = arg;
    dnnl_memory_desc_t um;
    if (user_md(&um, arg, q->op, &q->s))
        return -1;
    DNNL_TRY(dnnl_memory_create(&o->user, &um, d->engine, DNNL_MEMORY_NONE));
    const dnnl_memory_desc_t *im = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
    if (!im)
        return err_set("oneDNN: no memory descriptor for argument %d", arg);
    if (dnnl_memory_desc_equal(&um, im)) {
        o->inner = o->user;
        return 0;
    }
    DNNL_TRY(dnnl_memory_create(&o->inner, im, d->engine, DNNL_MEMORY_NONE));
    o->off = q->bytes;
    q->bytes += align64(dnnl_memory_desc_get_size(im));
    int out = i == 2;
    dnnl_primitive_attr_t attr;
    if (user_scratchpad(&attr))
        return -1;
    dnnl_primitive_desc_t rpd;
    dnnl_status_t st =
        dnnl_reorder_primitive_desc_create(&rpd, out ? im : &um, d->engine, out ? &um : im, d->engine, attr);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success)
        return dnnl_fail("reorder", st);
    int rc = make_step(&o->reorder, q, d, rpd);
    dnnl_primitive_desc_destroy(rpd);
    return rc;
}

static struct prim *prim_new(struct cpu_dnnl *d, enum dop op, enum backend_precision p,
                             const struct conv_shape *s)
{
    static const int args[6][3] = {
        {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
        {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC},
        {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS},
    };
    struct prim *q = calloc(1, sizeof *q);
    if (!q) {
        err_set("cpu_dnnl: out of memory");
        return NULL;
    }
    q->op = op;
    q->p = p;
    q->s = *s;
    q->gen = -1;
    dnnl_primitive_desc_t pd = NULL;
    if (op_pd(&pd, d, op, p == BACKEND_BF16 ? dnnl_bf16 : dnnl_f32, s))
        goto fail;
    for (int i = 0; i < 3; i++)
        if (make_operand(q, d, pd, i, args[op % 3][i]))
            goto fail;
    if (op % 3 == 2) {
        q->tmp_off = q->bytes;
        q->bytes += align64((size_t)s->cout * s->cin * s->k * s->k * sizeof(float));
    }
    if (make_step(&q->main, q, d, pd))
        goto fail;
    dnnl_primitive_desc_destroy(pd);
    return q;
fail:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    prim_free(q);
    return NULL;
}

/* The cached primitive for this call, built on first use, with the arena
 * grown to hold it and its inner handles pointing into the arena. */
static struct prim *prim_get(struct cpu_dnnl *d, enum dop op, enum backend_precision p,
                             const struct conv_shape *s)
{
    struct prim *q = d->cache;
    while (q && !(q->op == op && q->p == p && memcmp(&q->s, s, sizeof *s) == 0))
        q = q->next;
    if (!q) {
        if (!(q = prim_new(d, op, p, s)))
            return NULL;
        q->next = d->cache;
        d->cache = q;
        ++*d->allocs;
    }
    if (q->bytes > d->arena_bytes) {
        char *a = aligned_alloc(64, q->bytes);
        if (!a) {
            err_set("cpu_dnnl: out of memory allocating %zu bytes", q->bytes);
            return NULL;
        }
        free(d->arena);
        d->arena = a;
        d->arena_bytes = q->bytes;
        d->gen++;
        ++*d->allocs;
    }
    if (q->gen != d->gen) {
        dnnl_status_t st = dnnl_success;
        if (q->main.pad)
            st = dnnl_memory_set_data_handle(q->main.pad, d->arena + q->main.pad_off);
        for (int i = 0; i < 3; i++) {
            struct operand *o = &q->x[i];
            if (st == dnnl_success && o->inner != o->user)
                st = dnnl_memory_set_data_handle(o->inner, d->arena + o->off);
            if (st == dnnl_success && o->reorder.pad)
                st = dnnl_memory_set_data_handle(o->reorder.pad, d->arena + o->reorder.pad_off);
        }
        if (st != dnnl_success) {
            dnnl_fail("set_data_handle", st);
            return NULL;
        }
        q->gen = d->gen;
    }
    return q;
}

// ----------------------------------------------------------------------------
// running one

/* Run t with args [n] (room for one more: its scratchpad). */
static int exec_step(struct cpu_dnnl *d, const struct step *t, dnnl_exec_arg_t *args, int n)
{
    if (t->pad)
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, t->pad};
    DNNL_TRY(dnnl_primitive_execute(t->prim, d->stream, n, args));
    return 0;
}

static int reorder(struct cpu_dnnl *d, const struct operand *o)
{
    if (!o->reorder.prim)
        return 0;
    int out = o->arg == DNNL_ARG_DST || o->arg == DNNL_ARG_DIFF_SRC || o->arg == DNNL_ARG_DIFF_WEIGHTS;
    dnnl_exec_arg_t a[3] = {{DNNL_ARG_FROM, out ? o->inner : o->user},
                            {DNNL_ARG_TO, out ? o->user : o->inner}};
    return exec_step(d, &o->reorder, a, 2);
}

/* out = op(a, b): inputs reordered in, the primitive, the output reordered
 * out (to the caller's out, or for weight gradients to the arena scratch,
 * which is returned in *tmp). */
static int run(struct cpu_dnnl *d, enum dop op, enum backend_precision p, const struct conv_shape *s,
               const float *a, const float *b, float *out, float **tmp)
{
    struct prim *q = prim_get(d, op, p, s);
    if (!q)
        return -1;
    if (tmp)
        out = *tmp = (float *)(void *)(d->arena + q->tmp_off);
    const void *h[3] = {a, b, out};
    for (int i = 0; i < 3; i++)
        DNNL_TRY(dnnl_memory_set_data_handle(q->x[i].user, (void *)(uintptr_t)h[i]));
    if (reorder(d, &q->x[0]) || reorder(d, &q->x[1]))
        return -1;
    dnnl_exec_arg_t args[4];
    for (int i = 0; i < 3; i++)
        args[i] = (dnnl_exec_arg_t){q->x[i].arg, q->x[i].inner};
    if (exec_step(d, &q->main, args, 3) || reorder(d, &q->x[2]))
        return -1;
    DNNL_TRY(dnnl_stream_wait(d->stream));
    return 0;
}

/* dw [n] += g [n] (g already holds bf16 values when p is BF16) */
static void accumulate(float *dw, const float *g, long n)
{
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++)
        dw[i] += g[i];
}

static int forward(struct cpu_dnnl *d, enum dop op, enum backend_precision p, float *out, const float *in,
                   const float *w, const float *b, const struct conv_shape *s)
{
    if (run(d, op, p, s, in, w, out, NULL))
        return -1;
    cpu_add_bias(out, b, s->n, s->cout, (long)s->hout * s->wout);
    return 0;
}

static int backward(struct cpu_dnnl *d, enum dop op_d, enum backend_precision p, float *din, float *dw,
                    float *db, const float *dout, const float *in, const float *w, const struct conv_shape *s)
{
    if (din && run(d, op_d, p, s, dout, w, din, NULL))
        return -1;
    if (dw) {
        float *g;
        if (run(d, (enum dop)(op_d + 1), p, s, in, dout, NULL, &g))
            return -1;
        accumulate(dw, g, (long)s->cout * s->cin * s->k * s->k);
    }
    cpu_sum_bias(db, dout, s->n, s->cout, (long)s->hout * s->wout);
    return 0;
}

int cpu_dnnl_conv2d_forward(struct cpu_dnnl *d, enum backend_precision p, float *out, const float *in,
                            const float *w, const float *b, const struct conv_shape *s)
{
    return forward(d, CONV_FWD, p, out, in, w, b, s);
}

int cpu_dnnl_conv2d_backward(struct cpu_dnnl *d, enum backend_precision p, float *din, float *dw, float *db,
                             const float *dout, const float *in, const float *w, const struct conv_shape *s)
{
    return backward(d, CONV_BWD_D, p, din, dw, db, dout, in, w, s);
}

int cpu_dnnl_convt2d_forward(struct cpu_dnnl *d, enum backend_precision p, float *out, const float *in,
                             const float *w, const float *b, const struct conv_shape *s)
{
    return forward(d, DECONV_FWD, p, out, in, w, b, s);
}

int cpu_dnnl_convt2d_backward(struct cpu_dnnl *d, enum backend_precision p, float *din, float *dw, float *db,
                              const float *dout, const float *in, const float *w, const struct conv_shape *s)
{
    return backward(d, DECONV_BWD_D, p, din, dw, db, dout, in, w, s);
}
