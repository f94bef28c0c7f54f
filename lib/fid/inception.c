/*
 * inception: the FID Inception network (docs/fid-inception.md §2) as one
 * description, run_net(), executed twice: once in "build" mode, which only
 * records the 94 convolutions (names, geometry) and checks every view fits
 * its buffer, and then in "forward" mode for every batch.  So the layer
 * list the weights are loaded into and the forward pass cannot drift apart.
 *
 * Buffers, per batch slot (floats): two ping-pong activations A/B of
 * 64x147x147 (the largest, after Conv2d_2b), two branch temporaries T1/T2 of
 * 288x35x35 (the largest pool-branch input), the 3x299x299 input.  Branches
 * write straight into their channel slice of the block output (conv_ex and
 * pool2d take an output batch stride), so there is no concat copy.
 */
#include "inception.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "backend/layers-pool.h"
#include "format/safetensors.h"

#define N_CONVS    94
#define BIG_FLOATS (64L * 147 * 147)
#define TMP_FLOATS (288L * 35 * 35)
#define IN_FLOATS  (3L * INCEPTION_SIZE * INCEPTION_SIZE)

struct iconv {
    char name[40]; /* "Conv2d_1a_3x3", "Mixed_6b.branch7x7_2", ... */
    int cin, cout, kh, kw, s, ph, pw;
    float *w, *b; /* device: BN-folded weight [cout,cin,kh,kw], bias [cout] */
};

struct inception {
    backend_t be;
    int max_batch;
    struct iconv conv[N_CONVS];
    int nconv;
    float *params;          /* one device slab for every w and b */
    float *a, *b, *t1, *t2; /* activations, [max_batch] x BIG/BIG/TMP/TMP */
    float *in;              /* [max_batch,3,299,299] */
    float *feat;            /* [max_batch,2048] device */
    float *ws;              /* conv scratch */
    size_t ws_bytes;
    float *stage, *dstage; /* host / device [3,h,w] staging of one source image */
    size_t stage_floats;
};

const char *fid_convention_name(enum fid_convention c)
{
    return c == FID_CONV_TORCHMETRICS ? "torchmetrics" : "pytorch-fid";
}

int fid_convention_parse(const char *s, enum fid_convention *out)
{
    if (!strcmp(s, "pytorch-fid") || !strcmp(s, "pf")) {
        *out = FID_CONV_PYTORCH_FID;
        return 0;
    }
    if (!strcmp(s, "torchmetrics") || !strcmp(s, "tm")) {
        *out = FID_CONV_TORCHMETRICS;
        return 0;
    }
    return -1;
}

// ----------------------------------------------------------------------------
// The network description

/* A batch of feature maps: image i at p + i*bs, c planes of h x w. */
struct view {
    float *p;
    long bs;
    int c, h, w;
};

struct run {
    struct inception *net;
    int build; /* 1: record layers, no arithmetic */
    int n;     /* images in this pass (build: max_batch) */
    int cur;   /* next layer */
    const char *prefix;
};

static struct view vnew(float *buf, int c, int h, int w)
{
    return (struct view){buf, (long)c * h * w, c, h, w};
}

/* Channels [off, off+c) of a concatenation. */
static struct view slice(struct view cat, int off, int c)
{
    return (struct view){cat.p + (long)off * cat.h * cat.w, cat.bs, c, cat.h, cat.w};
}

/* 1 when images 0..n-1 of v lie inside one of the activation buffers. */
static int view_fits(const struct inception *net, int n, struct view v)
{
    const float *bufs[] = {net->a, net->b, net->t1, net->t2, net->in};
    const long per[] = {BIG_FLOATS, BIG_FLOATS, TMP_FLOATS, TMP_FLOATS, IN_FLOATS};
    uintptr_t p = (uintptr_t)v.p;
    for (int i = 0; i < 5; i++) {
        uintptr_t lo = (uintptr_t)bufs[i], hi = lo + (uintptr_t)net->max_batch * per[i] * 4;
        if (p >= lo && p < hi)
            return p + ((uintptr_t)(n - 1) * v.bs + (uintptr_t)v.c * v.h * v.w) * 4 <= hi;
    }
    return 0;
}

/* BasicConv2d (conv + folded BN + ReLU) from in to out; out.c is cout and
 * out.h/out.w must be the convolution's output size. */
static int conv(struct run *R, const char *name, struct view in, struct view out, int kh, int kw, int s,
                int ph, int pw)
{
    struct inception *net = R->net;
    struct conv_ex_shape sh;
    if (conv_ex_shape_init(&sh, R->n, in.c, in.h, in.w, out.c, kh, kw, s, s, ph, pw) != 0)
        return -1;
    sh.out_bstride = out.bs;
    sh.relu = 1;
    if (R->build) {
        if (sh.hout != out.h || sh.wout != out.w || in.bs != (long)in.c * in.h * in.w ||
            net->nconv >= N_CONVS)
            return err_set("inception: layer %d (%s) does not fit the description", net->nconv, name);
        if (!view_fits(net, R->n, in) || !view_fits(net, R->n, out))
            return err_set("inception: layer %s overflows its buffer", name);
        struct iconv *L = &net->conv[net->nconv++];
        *L = (struct iconv){.cin = in.c, .cout = out.c, .kh = kh, .kw = kw, .s = s, .ph = ph, .pw = pw};
        snprintf(L->name, sizeof L->name, "%s%s%s", R->prefix, *R->prefix ? "." : "", name);
        size_t need = conv_ex_workspace_bytes(net->be, &sh);
        if (need > net->ws_bytes)
            net->ws_bytes = need;
        return 0;
    }
    struct iconv *L = &net->conv[R->cur++];
    return conv_ex_forward(net->be, out.p, in.p, L->w, L->b, &sh, net->ws);
}

static int pool(struct run *R, struct view in, struct view out, int k, int s, int pad, enum pool_kind kind)
{
    struct pool_shape sh;
    if (pool2d_shape_init(&sh, R->n, in.c, in.h, in.w, k, s, pad, kind) != 0)
        return -1;
    sh.out_bstride = out.bs;
    if (R->build)
        return sh.hout == out.h && sh.wout == out.w && out.c == in.c && view_fits(R->net, R->n, out)
                   ? 0
                   : err_set("inception: a pool does not fit the description");
    return pool2d_forward(R->net->be, out.p, in.p, &sh);
}

/* A temporary [c,h,w] per image in buffer t (TMP_FLOATS per image). */
static struct view tmp(float *t, int c, int h, int w)
{
    return vnew(t, c, h, w);
}

#define TRY(x)                                                                                               \
    do {                                                                                                     \
        if ((x) != 0)                                                                                        \
            return -1;                                                                                       \
    } while (0)

/* FIDInceptionA: out = [64 | 64 | 96 | P], avg-pool without the padding. */
static int block_a(struct run *R, const char *pfx, struct view x, struct view y, int P)
{
    struct inception *n = R->net;
    int h = x.h, w = x.w;
    R->prefix = pfx;
    TRY(conv(R, "branch1x1", x, slice(y, 0, 64), 1, 1, 1, 0, 0));
    TRY(conv(R, "branch5x5_1", x, tmp(n->t1, 48, h, w), 1, 1, 1, 0, 0));
    TRY(conv(R, "branch5x5_2", tmp(n->t1, 48, h, w), slice(y, 64, 64), 5, 5, 1, 2, 2));
    TRY(conv(R, "branch3x3dbl_1", x, tmp(n->t1, 64, h, w), 1, 1, 1, 0, 0));
    TRY(conv(R, "branch3x3dbl_2", tmp(n->t1, 64, h, w), tmp(n->t2, 96, h, w), 3, 3, 1, 1, 1));
    TRY(conv(R, "branch3x3dbl_3", tmp(n->t2, 96, h, w), slice(y, 128, 96), 3, 3, 1, 1, 1));
    TRY(pool(R, x, tmp(n->t1, x.c, h, w), 3, 1, 1, POOL_AVG_EXCL_PAD));
    return conv(R, "branch_pool", tmp(n->t1, x.c, h, w), slice(y, 224, P), 1, 1, 1, 0, 0);
}

/* InceptionB (grid reduction): out = [384 | 96 | in]. */
static int block_b(struct run *R, const char *pfx, struct view x, struct view y)
{
    struct inception *n = R->net;
    int h = x.h, w = x.w;
    R->prefix = pfx;
    TRY(conv(R, "branch3x3", x, slice(y, 0, 384), 3, 3, 2, 0, 0));
    TRY(conv(R, "branch3x3dbl_1", x, tmp(n->t1, 64, h, w), 1, 1, 1, 0, 0));
    TRY(conv(R, "branch3x3dbl_2", tmp(n->t1, 64, h, w), tmp(n->t2, 96, h, w), 3, 3, 1, 1, 1));
    TRY(conv(R, "branch3x3dbl_3", tmp(n->t2, 96, h, w), slice(y, 384, 96), 3, 3, 2, 0, 0));
    return pool(R, x, slice(y, 480, x.c), 3, 2, 0, POOL_MAX);
}

/* FIDInceptionC: out = [192 | 192 | 192 | 192], c7 channels inside. */
static int block_c(struct run *R, const char *pfx, struct view x, struct view y, int c7)
{
    struct inception *n = R->net;
    int h = x.h, w = x.w;
    struct view t1 = tmp(n->t1, c7, h, w), t2 = tmp(n->t2, c7, h, w);
    R->prefix = pfx;
    TRY(conv(R, "branch1x1", x, slice(y, 0, 192), 1, 1, 1, 0, 0));
    TRY(conv(R, "branch7x7_1", x, t1, 1, 1, 1, 0, 0));
    TRY(conv(R, "branch7x7_2", t1, t2, 1, 7, 1, 0, 3));
    TRY(conv(R, "branch7x7_3", t2, slice(y, 192, 192), 7, 1, 1, 3, 0));
    TRY(conv(R, "branch7x7dbl_1", x, t1, 1, 1, 1, 0, 0));
    TRY(conv(R, "branch7x7dbl_2", t1, t2, 7, 1, 1, 3, 0));
    TRY(conv(R, "branch7x7dbl_3", t2, t1, 1, 7, 1, 0, 3));
    TRY(conv(R, "branch7x7dbl_4", t1, t2, 7, 1, 1, 3, 0));
    TRY(conv(R, "branch7x7dbl_5", t2, slice(y, 384, 192), 1, 7, 1, 0, 3));
    TRY(pool(R, x, tmp(n->t1, x.c, h, w), 3, 1, 1, POOL_AVG_EXCL_PAD));
    return conv(R, "branch_pool", tmp(n->t1, x.c, h, w), slice(y, 576, 192), 1, 1, 1, 0, 0);
}

/* InceptionD (grid reduction): out = [320 | 192 | in]. */
static int block_d(struct run *R, const char *pfx, struct view x, struct view y)
{
    struct inception *n = R->net;
    int h = x.h, w = x.w;
    struct view t1 = tmp(n->t1, 192, h, w), t2 = tmp(n->t2, 192, h, w);
    R->prefix = pfx;
    TRY(conv(R, "branch3x3_1", x, t1, 1, 1, 1, 0, 0));
    TRY(conv(R, "branch3x3_2", t1, slice(y, 0, 320), 3, 3, 2, 0, 0));
    TRY(conv(R, "branch7x7x3_1", x, t1, 1, 1, 1, 0, 0));
    TRY(conv(R, "branch7x7x3_2", t1, t2, 1, 7, 1, 0, 3));
    TRY(conv(R, "branch7x7x3_3", t2, t1, 7, 1, 1, 3, 0));
    TRY(conv(R, "branch7x7x3_4", t1, slice(y, 320, 192), 3, 3, 2, 0, 0));
    return pool(R, x, slice(y, 512, x.c), 3, 2, 0, POOL_MAX);
}

/* FIDInceptionE_1 (avg pool without padding) / E_2 (max pool):
 * out = [320 | 384 384 | 384 384 | 192]. */
static int block_e(struct run *R, const char *pfx, struct view x, struct view y, enum pool_kind pk)
{
    struct inception *n = R->net;
    int h = x.h, w = x.w;
    R->prefix = pfx;
    TRY(conv(R, "branch1x1", x, slice(y, 0, 320), 1, 1, 1, 0, 0));
    TRY(conv(R, "branch3x3_1", x, tmp(n->t1, 384, h, w), 1, 1, 1, 0, 0));
    TRY(conv(R, "branch3x3_2a", tmp(n->t1, 384, h, w), slice(y, 320, 384), 1, 3, 1, 0, 1));
    TRY(conv(R, "branch3x3_2b", tmp(n->t1, 384, h, w), slice(y, 704, 384), 3, 1, 1, 1, 0));
    TRY(conv(R, "branch3x3dbl_1", x, tmp(n->t1, 448, h, w), 1, 1, 1, 0, 0));
    TRY(conv(R, "branch3x3dbl_2", tmp(n->t1, 448, h, w), tmp(n->t2, 384, h, w), 3, 3, 1, 1, 1));
    TRY(conv(R, "branch3x3dbl_3a", tmp(n->t2, 384, h, w), slice(y, 1088, 384), 1, 3, 1, 0, 1));
    TRY(conv(R, "branch3x3dbl_3b", tmp(n->t2, 384, h, w), slice(y, 1472, 384), 3, 1, 1, 1, 0));
    TRY(pool(R, x, tmp(n->t1, x.c, h, w), 3, 1, 1, pk));
    return conv(R, "branch_pool", tmp(n->t1, x.c, h, w), slice(y, 1856, 192), 1, 1, 1, 0, 0);
}

/* The whole network from net->in to the pool3 features in net->feat. */
static int run_net(struct run *R)
{
    struct inception *n = R->net;
    struct view in = vnew(n->in, 3, INCEPTION_SIZE, INCEPTION_SIZE);
    R->prefix = "";
    TRY(conv(R, "Conv2d_1a_3x3", in, vnew(n->a, 32, 149, 149), 3, 3, 2, 0, 0));
    TRY(conv(R, "Conv2d_2a_3x3", vnew(n->a, 32, 149, 149), vnew(n->b, 32, 147, 147), 3, 3, 1, 0, 0));
    TRY(conv(R, "Conv2d_2b_3x3", vnew(n->b, 32, 147, 147), vnew(n->a, 64, 147, 147), 3, 3, 1, 1, 1));
    TRY(pool(R, vnew(n->a, 64, 147, 147), vnew(n->b, 64, 73, 73), 3, 2, 0, POOL_MAX));
    TRY(conv(R, "Conv2d_3b_1x1", vnew(n->b, 64, 73, 73), vnew(n->a, 80, 73, 73), 1, 1, 1, 0, 0));
    TRY(conv(R, "Conv2d_4a_3x3", vnew(n->a, 80, 73, 73), vnew(n->b, 192, 71, 71), 3, 3, 1, 0, 0));
    TRY(pool(R, vnew(n->b, 192, 71, 71), vnew(n->a, 192, 35, 35), 3, 2, 0, POOL_MAX));
    TRY(block_a(R, "Mixed_5b", vnew(n->a, 192, 35, 35), vnew(n->b, 256, 35, 35), 32));
    TRY(block_a(R, "Mixed_5c", vnew(n->b, 256, 35, 35), vnew(n->a, 288, 35, 35), 64));
    TRY(block_a(R, "Mixed_5d", vnew(n->a, 288, 35, 35), vnew(n->b, 288, 35, 35), 64));
    TRY(block_b(R, "Mixed_6a", vnew(n->b, 288, 35, 35), vnew(n->a, 768, 17, 17)));
    TRY(block_c(R, "Mixed_6b", vnew(n->a, 768, 17, 17), vnew(n->b, 768, 17, 17), 128));
    TRY(block_c(R, "Mixed_6c", vnew(n->b, 768, 17, 17), vnew(n->a, 768, 17, 17), 160));
    TRY(block_c(R, "Mixed_6d", vnew(n->a, 768, 17, 17), vnew(n->b, 768, 17, 17), 160));
    TRY(block_c(R, "Mixed_6e", vnew(n->b, 768, 17, 17), vnew(n->a, 768, 17, 17), 192));
    TRY(block_d(R, "Mixed_7a", vnew(n->a, 768, 17, 17), vnew(n->b, 1280, 8, 8)));
    TRY(block_e(R, "Mixed_7b", vnew(n->b, 1280, 8, 8), vnew(n->a, 2048, 8, 8), POOL_AVG_EXCL_PAD));
    TRY(block_e(R, "Mixed_7c", vnew(n->a, 2048, 8, 8), vnew(n->b, 2048, 8, 8), POOL_MAX));
    if (R->build)
        return n->nconv == N_CONVS ? 0 : err_set("inception: %d convs", n->nconv);
    /* adaptive average pool to 1x1: the mean of each 8x8 plane */
    return mean_forward(n->be, n->feat, n->b, R->n * INCEPTION_DIM, 64);
}

// ----------------------------------------------------------------------------
// Loading

static int find_suffix(const st_file *f, const char *suffix)
{
    size_t ls = strlen(suffix);
    for (int i = 0; i < st_count(f); i++) {
        const char *name = st_at(f, i)->name;
        size_t ln = strlen(name);
        if (ln >= ls && !strcmp(name + ln - ls, suffix))
            return 1;
    }
    return 0;
}

/* Read one [n] vector into dst (host). */
static int read_vec(const st_file *f, const char *layer, const char *what, float *dst, int n)
{
    char name[96];
    snprintf(name, sizeof name, "%s.%s", layer, what);
    int64_t shape[1] = {n};
    return st_read_f32(f, name, dst, shape, 1);
}

/* Load and fold every conv + BN into the parameter slab. */
static int load_weights(struct inception *net, const char *path)
{
    st_file *f = st_open(path);
    if (!f)
        return -1;
    int rc = -1;
    float *host = NULL;
    const char *hint = "not the FID Inception weights? Convert pytorch-fid's "
                       "pt_inception-2015-12-05-6726825d.pth with 'ckpt import'";
    const st_tensor *fc = st_get(f, "fc.weight");
    if (find_suffix(f, "AuxLogits.fc.weight") || (fc && !(fc->ndim == 2 && fc->shape[0] == 1008))) {
        err_set("%s: has %s: torchvision's ImageNet Inception v3, %s", path,
                fc && fc->shape[0] != 1008 ? "a 1000-class fc" : "AuxLogits", hint);
        goto out;
    }
    size_t total = 0, maxw = 0;
    for (int i = 0; i < net->nconv; i++) {
        const struct iconv *L = &net->conv[i];
        size_t nw = (size_t)L->cout * L->cin * L->kh * L->kw;
        total += nw + L->cout;
        if (nw > maxw)
            maxw = nw;
    }
    net->params = backend_alloc(net->be, total * sizeof(float));
    host = malloc((maxw + 5 * 2048) * sizeof(float));
    if (!net->params || !host) {
        err_set("inception: out of memory for %zu parameters", total);
        goto out;
    }
    float *p = net->params;
    for (int i = 0; i < net->nconv; i++) {
        struct iconv *L = &net->conv[i];
        size_t nw = (size_t)L->cout * L->cin * L->kh * L->kw;
        float *g = host + maxw, *bt = g + 2048, *mu = bt + 2048, *var = mu + 2048, *bias = var + 2048;
        char name[96];
        snprintf(name, sizeof name, "%s.conv.weight", L->name);
        int64_t shape[4] = {L->cout, L->cin, L->kh, L->kw};
        if (st_read_f32(f, name, host, shape, 4) || read_vec(f, L->name, "bn.weight", g, L->cout) ||
            read_vec(f, L->name, "bn.bias", bt, L->cout) ||
            read_vec(f, L->name, "bn.running_mean", mu, L->cout) ||
            read_vec(f, L->name, "bn.running_var", var, L->cout)) {
            err_wrap("%s", hint);
            goto out;
        }
        /* fold eval BN: w' = w*s, b' = beta - mean*s, s = gamma/sqrt(var+eps) */
        size_t per = nw / L->cout;
        for (int o = 0; o < L->cout; o++) {
            double s = (double)g[o] / sqrt((double)var[o] + INCEPTION_BN_EPS);
            for (size_t j = 0; j < per; j++)
                host[o * per + j] = (float)(host[o * per + j] * s);
            bias[o] = (float)((double)bt[o] - (double)mu[o] * s);
        }
        L->w = p;
        L->b = p + nw;
        if (backend_upload(net->be, L->w, host, nw * sizeof(float)) ||
            backend_upload(net->be, L->b, bias, L->cout * sizeof(float)))
            goto out;
        p += nw + L->cout;
    }
    rc = 0;
out:
    free(host);
    st_free(f);
    return rc;
}

struct inception *inception_load(backend_t be, const char *path, int max_batch)
{
    if (!be || max_batch < 1) {
        err_set("inception_load: bad arguments");
        return NULL;
    }
    struct inception *net = calloc(1, sizeof *net);
    if (!net) {
        err_set("inception: out of memory");
        return NULL;
    }
    net->be = be;
    net->max_batch = max_batch;
    size_t nb = (size_t)max_batch;
    net->a = backend_alloc(be, nb * BIG_FLOATS * sizeof(float));
    net->b = backend_alloc(be, nb * BIG_FLOATS * sizeof(float));
    net->t1 = backend_alloc(be, nb * TMP_FLOATS * sizeof(float));
    net->t2 = backend_alloc(be, nb * TMP_FLOATS * sizeof(float));
    net->in = backend_alloc(be, nb * IN_FLOATS * sizeof(float));
    net->feat = backend_alloc(be, nb * INCEPTION_DIM * sizeof(float));
    if (!net->a || !net->b || !net->t1 || !net->t2 || !net->in || !net->feat)
        goto fail;
    struct run R = {.net = net, .build = 1, .n = max_batch};
    if (run_net(&R) != 0)
        goto fail;
    if (net->ws_bytes && !(net->ws = backend_alloc(be, net->ws_bytes)))
        goto fail;
    if (load_weights(net, path) != 0)
        goto fail;
    return net;
fail:
    inception_free(net);
    return NULL;
}

void inception_free(struct inception *net)
{
    if (!net)
        return;
    backend_t be = net->be;
    float *bufs[] = {net->params, net->a, net->b, net->t1, net->t2, net->in, net->feat, net->ws, net->dstage};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        backend_dealloc(be, bufs[i]);
    free(net->stage);
    free(net);
}

int inception_max_batch(const struct inception *net)
{
    return net->max_batch;
}

// ----------------------------------------------------------------------------
// Input

/* Make the staging buffers hold n floats (grown, never shrunk). */
static int stage_reserve(struct inception *net, size_t n)
{
    if (n <= net->stage_floats)
        return 0;
    free(net->stage);
    backend_dealloc(net->be, net->dstage);
    net->stage = malloc(n * sizeof(float));
    net->dstage = backend_alloc(net->be, n * sizeof(float));
    net->stage_floats = net->stage && net->dstage ? n : 0;
    return net->stage_floats ? 0 : err_set("inception: out of memory for a %zu-float image", n);
}

/* Upload the staged [3,h,w] source and resize it into slot. */
static int stage_resize(struct inception *net, int slot, int h, int w, enum fid_convention conv)
{
    size_t n = (size_t)3 * h * w;
    if (backend_upload(net->be, net->dstage, net->stage, n * sizeof(float)))
        return -1;
    float *dst = net->in + (size_t)slot * IN_FLOATS;
    if (conv == FID_CONV_TORCHMETRICS) /* (x - 128) / 128, exact as x/128 - 1 */
        return resize_bilinear_forward(net->be, dst, net->dstage, 3, h, w, INCEPTION_SIZE, INCEPTION_SIZE,
                                       RESIZE_TF1, 0.0078125f, -1.0f);
    return resize_bilinear_forward(net->be, dst, net->dstage, 3, h, w, INCEPTION_SIZE, INCEPTION_SIZE,
                                   RESIZE_HALF_PIXEL, 2.0f, -1.0f);
}

static int check_slot(const struct inception *net, int slot, int c, int h, int w)
{
    if (slot < 0 || slot >= net->max_batch)
        return err_set("inception: slot %d outside the batch of %d", slot, net->max_batch);
    if (c != 3)
        return err_set("the FID network takes 3-channel images, got %d channels", c);
    if (h < 1 || w < 1 || (long)h * w > (1L << 26))
        return err_set("inception: bad image size %dx%d", w, h);
    return 0;
}

int inception_set_image_f32(struct inception *net, int slot, const float *chw, int c, int h, int w,
                            enum fid_convention conv)
{
    if (check_slot(net, slot, c, h, w) || stage_reserve(net, (size_t)3 * h * w))
        return -1;
    size_t n = (size_t)3 * h * w;
    for (size_t i = 0; i < n; i++) {
        float x01 = chw[i] * 0.5f + 0.5f;
        if (conv == FID_CONV_TORCHMETRICS) {
            float z = x01 * 255.0f; /* then uint8 truncation; clamped first (NaN -> 0) */
            z = z >= 0.0f ? (z <= 255.0f ? z : 255.0f) : 0.0f;
            net->stage[i] = truncf(z);
        } else {
            net->stage[i] = x01;
        }
    }
    return stage_resize(net, slot, h, w, conv);
}

int inception_set_image_u8(struct inception *net, int slot, const uint8_t *px, int c, int h, int w, int hwc,
                           enum fid_convention conv)
{
    if (check_slot(net, slot, c, h, w) || stage_reserve(net, (size_t)3 * h * w))
        return -1;
    long hw = (long)h * w;
    for (int ch = 0; ch < 3; ch++)
        for (long j = 0; j < hw; j++) {
            uint8_t k = hwc ? px[j * 3 + ch] : px[ch * hw + j];
            net->stage[ch * hw + j] = conv == FID_CONV_TORCHMETRICS ? (float)k : (float)k / 255.0f;
        }
    return stage_resize(net, slot, h, w, conv);
}

int inception_forward(struct inception *net, int n, float *feats)
{
    if (n < 1 || n > net->max_batch)
        return err_set("inception: batch of %d outside 1..%d", n, net->max_batch);
    struct run R = {.net = net, .build = 0, .n = n};
    if (run_net(&R) != 0)
        return -1;
    return backend_download(net->be, feats, net->feat, (size_t)n * INCEPTION_DIM * sizeof(float));
}
