/*
 * model: generator and discriminator as a flat list of layers (the
 * reference's nn.Sequential flattened, residual blocks bracketed by
 * RES_BEGIN/RES_END markers), one forward and one backward interpreter over
 * that list, default initialisation and state_dict naming.  See model.h.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "backend/layers.h"

#define NET_MAX_LAYERS 128

enum layer_kind {
    L_PAD,       /* reflection pad `pad` */
    L_CONV,      /* Conv2d cin->cout k stride pad, bias */
    L_CONVT,     /* ConvTranspose2d cin->cout k stride pad out_pad, bias */
    L_BN,        /* BatchNorm2d(cout) */
    L_IN,        /* InstanceNorm2d, no affine */
    L_ACT,       /* in place */
    L_RES_BEGIN, /* in place: remembers its input as the skip */
    L_RES_END,   /* in place: output += skip */
    L_MEAN,      /* mean over the patch map -> [n] */
};

struct layer {
    enum layer_kind kind;
    char name[48]; /* state_dict module prefix, "" for parameter-free layers */
    int cin, cout, k, stride, pad, out_pad;
    enum act_kind act;
    int skip_from;         /* L_RES_END: index of its L_RES_BEGIN */
    size_t w_off, b_off;   /* offsets in the parameter slab (conv: w,b; BN: gamma,beta) */
    size_t rm_off, rv_off; /* offsets in the buffer slab (BN) */
    int64_t nbt;           /* BN num_batches_tracked */
};

struct net {
    backend_t be;
    int is_gen;
    struct layer L[NET_MAX_LAYERS];
    int nl;
    float *params, *grads, *bufs; /* device slabs */
    size_t n_params, n_bufs;
    struct net_tensor *tensors;
    int n_tensors;
    int training;
    float *scratch[3]; /* backward: two ping-pong gradient buffers + skip gradient */
    size_t scratch_n;
};

struct net_acts {
    struct net *net;
    int n, h, w;
    int training;                                       /* BN mode of the last forward */
    float *slab;                                        /* everything below lives in it */
    float *x;                                           /* copy of the input [n,3,h,w] */
    float *out[NET_MAX_LAYERS];                         /* layer outputs (aliases for in-place layers) */
    float *mean[NET_MAX_LAYERS], *rstd[NET_MAX_LAYERS]; /* BN [c], IN [n*c] */
    int c_[NET_MAX_LAYERS], h_[NET_MAX_LAYERS], w_[NET_MAX_LAYERS]; /* output shapes */
    struct conv_shape cs[NET_MAX_LAYERS];
    int in_c, forwarded;
};

// ----------------------------------------------------------------------------
// building

static struct layer *add(struct net *net, enum layer_kind kind, const char *name)
{
    struct layer *l = &net->L[net->nl++];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    snprintf(l->name, sizeof l->name, "%s", name ? name : "");
    return l;
}

static void add_conv(struct net *net, enum layer_kind kind, const char *name, int cin, int cout, int k,
                     int stride, int pad, int out_pad)
{
    struct layer *l = add(net, kind, name);
    l->cin = cin, l->cout = cout, l->k = k, l->stride = stride, l->pad = pad;
    l->out_pad = out_pad;
}

static void add_bn(struct net *net, const char *name, int c)
{
    add(net, L_BN, name)->cout = c;
}

static void add_act(struct net *net, enum act_kind act)
{
    add(net, L_ACT, NULL)->act = act;
}

static void add_pad(struct net *net, int p)
{
    add(net, L_PAD, NULL)->pad = p;
}

/* One named tensor of layer l; data/grad point into the slabs once they
 * exist (NULL while only the layout is known). */
static void tensor_of_(const struct net *net, const struct layer *l, const char *leaf,
                       enum net_tensor_kind kind, int ndim, const int64_t *shape, size_t off,
                       struct net_tensor *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s.%s", l->name, leaf);
    t->kind = kind;
    t->ndim = ndim;
    t->numel = 1;
    for (int d = 0; d < ndim; d++)
        t->shape[d] = shape[d], t->numel *= (size_t)shape[d];
    if (kind == NET_COUNTER)
        t->data = (void *)&l->nbt;
    else if (kind == NET_BUFFER && net->bufs)
        t->data = net->bufs + off;
    else if (kind == NET_PARAM && net->params)
        t->data = net->params + off, t->grad = net->grads + off;
}

/* Offsets of every parameter and buffer in the slabs (nothing allocated). */
static void layout_(struct net *net)
{
    size_t np = 0, nb = 0;
    for (int i = 0; i < net->nl; i++) {
        struct layer *l = &net->L[i];
        if (l->kind == L_CONV || l->kind == L_CONVT) {
            l->w_off = np, np += (size_t)l->cin * l->cout * l->k * l->k;
            l->b_off = np, np += l->cout;
        } else if (l->kind == L_BN) {
            l->w_off = np, np += l->cout;
            l->b_off = np, np += l->cout;
            l->rm_off = nb, nb += l->cout;
            l->rv_off = nb, nb += l->cout;
        }
    }
    net->n_params = np, net->n_bufs = nb;
}

/* fn on every named tensor in state_dict order; stops at a non-zero return. */
static int walk_(const struct net *net, net_tensor_fn fn, void *ctx)
{
    struct net_tensor t;
    for (int i = 0; i < net->nl; i++) {
        const struct layer *l = &net->L[i];
        int rc = 0;
        if (l->kind == L_CONV || l->kind == L_CONVT) {
            /* Conv2d weight OIHW, ConvTranspose2d weight IOHW */
            int64_t ws[4] = {l->kind == L_CONV ? l->cout : l->cin, l->kind == L_CONV ? l->cin : l->cout, l->k,
                             l->k};
            int64_t bs[1] = {l->cout};
            tensor_of_(net, l, "weight", NET_PARAM, 4, ws, l->w_off, &t);
            rc = fn(&t, ctx);
            if (!rc) {
                tensor_of_(net, l, "bias", NET_PARAM, 1, bs, l->b_off, &t);
                rc = fn(&t, ctx);
            }
        } else if (l->kind == L_BN) {
            int64_t cs[1] = {l->cout};
            tensor_of_(net, l, "weight", NET_PARAM, 1, cs, l->w_off, &t);
            rc = fn(&t, ctx);
            if (!rc) {
                tensor_of_(net, l, "bias", NET_PARAM, 1, cs, l->b_off, &t);
                rc = fn(&t, ctx);
            }
            if (!rc) {
                tensor_of_(net, l, "running_mean", NET_BUFFER, 1, cs, l->rm_off, &t);
                rc = fn(&t, ctx);
            }
            if (!rc) {
                tensor_of_(net, l, "running_var", NET_BUFFER, 1, cs, l->rv_off, &t);
                rc = fn(&t, ctx);
            }
            if (!rc) {
                tensor_of_(net, l, "num_batches_tracked", NET_COUNTER, 0, NULL, 0, &t);
                rc = fn(&t, ctx);
            }
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int push_tensor_(const struct net_tensor *t, void *ctx)
{
    struct net *net = ctx;
    net->tensors[net->n_tensors++] = *t;
    return 0;
}

/* Lay out the slabs, allocate them, list the named tensors. */
static int finish(struct net *net, rng *init)
{
    layout_(net);
    size_t np = net->n_params, nb = net->n_bufs;
    net->params = backend_alloc(net->be, np * sizeof(float));
    net->grads = backend_alloc(net->be, np * sizeof(float));
    net->bufs = backend_alloc(net->be, (nb ? nb : 1) * sizeof(float));
    net->tensors = calloc(5 * (size_t)net->nl, sizeof *net->tensors);
    if (!net->params || !net->grads || !net->bufs || !net->tensors)
        return err_set("net: out of memory");
    walk_(net, push_tensor_, net);
    net->training = 1;
    return net_reset_parameters(net, init);
}

static struct net *net_alloc(backend_t be)
{
    if (!be) {
        err_set("net: no backend");
        return NULL;
    }
    struct net *net = calloc(1, sizeof *net);
    if (!net)
        err_set("net: out of memory");
    else
        net->be = be;
    return net;
}

static int gen_config_ok_(const struct gen_config *cfg)
{
    if (!cfg || cfg->ngf < 1 || cfg->ngf > NET_MAX_WIDTH || cfg->n_blocks < 0 ||
        16 + 9 * cfg->n_blocks > NET_MAX_LAYERS)
        return err_set("generator: bad config (ngf %d, %d blocks; at most %d filters and %d blocks)",
                       cfg ? cfg->ngf : 0, cfg ? cfg->n_blocks : 0, NET_MAX_WIDTH, NET_GEN_MAX_BLOCKS);
    return 0;
}

static int disc_config_ok_(const struct disc_config *cfg)
{
    if (!cfg || cfg->ndf < 1 || cfg->ndf > NET_MAX_WIDTH)
        return err_set("discriminator: bad config (ndf %d; at most %d filters)", cfg ? cfg->ndf : 0,
                       NET_MAX_WIDTH);
    return 0;
}

/* The layer list of a generator (nothing allocated). */
static void gen_layers_(struct net *net, const struct gen_config *cfg)
{
    net->is_gen = 1;
    int c = cfg->ngf, nb = cfg->n_blocks;
    char nm[48], nm2[48];
    add_pad(net, 3);
    add_conv(net, L_CONV, "model.1", 3, c, 7, 1, 0, 0);
    add_bn(net, "model.2", c);
    add_act(net, ACT_RELU);
    for (int d = 0; d < 2; d++, c *= 2) { /* model.4-6, model.7-9 */
        snprintf(nm, sizeof nm, "model.%d", 4 + 3 * d);
        snprintf(nm2, sizeof nm2, "model.%d", 5 + 3 * d);
        add_conv(net, L_CONV, nm, c, 2 * c, 3, 2, 1, 0);
        add_bn(net, nm2, 2 * c);
        add_act(net, ACT_RELU);
    }
    for (int b = 0; b < nb; b++) { /* model.10 ... model.(9+nb) */
        int begin = net->nl;
        add(net, L_RES_BEGIN, NULL);
        for (int half = 0; half < 2; half++) {
            snprintf(nm, sizeof nm, "model.%d.conv_block.%d", 10 + b, 1 + 4 * half);
            snprintf(nm2, sizeof nm2, "model.%d.conv_block.%d", 10 + b, 2 + 4 * half);
            add_pad(net, 1);
            add_conv(net, L_CONV, nm, c, c, 3, 1, 0, 0);
            add_bn(net, nm2, c);
            if (half == 0)
                add_act(net, ACT_RELU);
        }
        add(net, L_RES_END, NULL)->skip_from = begin;
    }
    for (int u = 0; u < 2; u++, c /= 2) { /* model.(10+nb)-(12+nb), (13+nb)-(15+nb) */
        snprintf(nm, sizeof nm, "model.%d", 10 + nb + 3 * u);
        snprintf(nm2, sizeof nm2, "model.%d", 11 + nb + 3 * u);
        add_conv(net, L_CONVT, nm, c, c / 2, 3, 2, 1, 1);
        add_bn(net, nm2, c / 2);
        add_act(net, ACT_RELU);
    }
    add_pad(net, 3);
    snprintf(nm, sizeof nm, "model.%d", 17 + nb);
    add_conv(net, L_CONV, nm, c, 3, 7, 1, 0, 0);
    add_act(net, ACT_TANH);
}

static void disc_layers_(struct net *net, const struct disc_config *cfg)
{
    int c = cfg->ndf;
    add_conv(net, L_CONV, "model.0", 3, c, 4, 2, 1, 0);
    add_act(net, ACT_LRELU);
    add_conv(net, L_CONV, "model.2", c, 2 * c, 4, 2, 1, 0);
    add_bn(net, "model.3", 2 * c);
    add_act(net, ACT_LRELU);
    add_conv(net, L_CONV, "model.5", 2 * c, 4 * c, 4, 2, 1, 0);
    add(net, L_IN, NULL)->cout = 4 * c;
    add_act(net, ACT_LRELU);
    add_conv(net, L_CONV, "model.8", 4 * c, 8 * c, 4, 1, 1, 0);
    add(net, L_IN, NULL)->cout = 8 * c;
    add_act(net, ACT_LRELU);
    add_conv(net, L_CONV, "model.11", 8 * c, 1, 4, 1, 1, 0);
    add(net, L_MEAN, NULL);
}

/* The layer list of a generator (gen non-NULL) or a discriminator. */
static void layers_(struct net *net, const struct gen_config *gen, const struct disc_config *disc)
{
    if (gen)
        gen_layers_(net, gen);
    else if (disc)
        disc_layers_(net, disc);
}

static struct net *build_(backend_t be, rng *init, const struct gen_config *gen,
                          const struct disc_config *disc)
{
    struct net *net = net_alloc(be);
    if (!net)
        return NULL;
    layers_(net, gen, disc);
    if (finish(net, init)) {
        net_free(net);
        return NULL;
    }
    return net;
}

struct net *gen_new(backend_t be, const struct gen_config *cfg, rng *init)
{
    return gen_config_ok_(cfg) ? NULL : build_(be, init, cfg, NULL);
}

struct net *disc_new(backend_t be, const struct disc_config *cfg, rng *init)
{
    return disc_config_ok_(cfg) ? NULL : build_(be, init, NULL, cfg);
}

/* The layout of a network that is never allocated: its layer list lives in
 * a heap struct net (it is a few tens of KB) with no backend and no slabs. */
static int each_tensor_(const struct gen_config *gen, const struct disc_config *disc, net_tensor_fn fn,
                        void *ctx)
{
    struct net *net = calloc(1, sizeof *net);
    if (!net)
        return err_set("net: out of memory");
    layers_(net, gen, disc);
    layout_(net);
    int rc = walk_(net, fn, ctx);
    free(net);
    return rc;
}

int gen_each_tensor(const struct gen_config *cfg, net_tensor_fn fn, void *ctx)
{
    return gen_config_ok_(cfg) ? -1 : each_tensor_(cfg, NULL, fn, ctx);
}

int disc_each_tensor(const struct disc_config *cfg, net_tensor_fn fn, void *ctx)
{
    return disc_config_ok_(cfg) ? -1 : each_tensor_(NULL, cfg, fn, ctx);
}

void net_free(struct net *net)
{
    if (!net)
        return;
    backend_dealloc(net->be, net->params);
    backend_dealloc(net->be, net->grads);
    backend_dealloc(net->be, net->bufs);
    for (int i = 0; i < 3; i++)
        backend_dealloc(net->be, net->scratch[i]);
    free(net->tensors);
    free(net);
}

// ----------------------------------------------------------------------------
// initialisation: torch.nn.Conv2d/ConvTranspose2d.reset_parameters, i.e.
// kaiming_uniform_(w, a=sqrt(5)) then bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
// fan_in = w.size(1)*k*k; the bounds are computed in double as Python does.

int net_reset_parameters(struct net *net, rng *r)
{
    float *hp = calloc(net->n_params ? net->n_params : 1, sizeof(float));
    float *hb = calloc(net->n_bufs ? net->n_bufs : 1, sizeof(float));
    if (!hp || !hb) {
        free(hp), free(hb);
        return err_set("net_reset_parameters: out of memory");
    }
    for (int i = 0; i < net->nl; i++) {
        struct layer *l = &net->L[i];
        if ((l->kind == L_CONV || l->kind == L_CONVT) && r) {
            size_t nw = (size_t)l->cin * l->cout * l->k * l->k;
            /* weight.size(1): Cin for Conv2d [O,I,k,k], Cout for ConvTranspose2d [I,O,k,k] */
            double fan_in = (double)(l->kind == L_CONV ? l->cin : l->cout) * l->k * l->k;
            double a = sqrt(5.0);
            double gain = sqrt(2.0 / (1 + pow(a, 2)));
            double stdv = gain / sqrt(fan_in);
            double bound = sqrt(3.0) * stdv;
            for (size_t j = 0; j < nw; j++)
                hp[l->w_off + j] = rng_uniform_f32(r, (float)-bound, (float)bound);
            double bb = 1.0 / sqrt(fan_in);
            for (int j = 0; j < l->cout; j++)
                hp[l->b_off + j] = rng_uniform_f32(r, (float)-bb, (float)bb);
        } else if (l->kind == L_BN) {
            for (int j = 0; j < l->cout; j++) {
                hp[l->w_off + j] = 1.0f, hp[l->b_off + j] = 0.0f;
                hb[l->rm_off + j] = 0.0f, hb[l->rv_off + j] = 1.0f;
            }
            l->nbt = 0;
        }
    }
    int rc = backend_upload(net->be, net->params, hp, net->n_params * sizeof(float));
    if (!rc)
        rc = backend_upload(net->be, net->bufs, hb, net->n_bufs * sizeof(float));
    free(hp), free(hb);
    return rc;
}

// ----------------------------------------------------------------------------
// accessors

int net_tensor_count(const struct net *net)
{
    return net->n_tensors;
}

const struct net_tensor *net_tensor_at(const struct net *net, int i)
{
    return i >= 0 && i < net->n_tensors ? &net->tensors[i] : NULL;
}

const struct net_tensor *net_tensor_find(const struct net *net, const char *name)
{
    for (int i = 0; i < net->n_tensors; i++)
        if (!strcmp(net->tensors[i].name, name))
            return &net->tensors[i];
    return NULL;
}

float *net_params(struct net *net, size_t *n)
{
    if (n)
        *n = net->n_params;
    return net->params;
}

float *net_grads(struct net *net, size_t *n)
{
    if (n)
        *n = net->n_params;
    return net->grads;
}

int net_zero_grad(struct net *net)
{
    return backend_zero(net->be, net->grads, net->n_params * sizeof(float));
}

void net_set_training(struct net *net, int training)
{
    net->training = training != 0;
}
int net_is_training(const struct net *net)
{
    return net->training;
}
backend_t net_backend(const struct net *net)
{
    return net->be;
}

// ----------------------------------------------------------------------------
// activations

static int in_place(enum layer_kind k)
{
    return k == L_ACT || k == L_RES_BEGIN || k == L_RES_END;
}

struct net_acts *net_acts_new(struct net *net, int n, int h, int w)
{
    if (!net || n < 1 || h < 1 || w < 1) {
        err_set("net_acts_new: bad arguments");
        return NULL;
    }
    struct net_acts *a = calloc(1, sizeof *a);
    if (!a) {
        err_set("net_acts_new: out of memory");
        return NULL;
    }
    a->net = net, a->n = n, a->h = h, a->w = w, a->in_c = 3;
    /* pass 1: shapes, sizes, workspace */
    size_t off[NET_MAX_LAYERS], soff[NET_MAX_LAYERS], nst[NET_MAX_LAYERS], total = (size_t)n * 3 * h * w;
    size_t maxel = total, ws = 0;
    int c = 3;
    for (int i = 0; i < net->nl; i++) {
        struct layer *l = &net->L[i];
        int oc = c, oh = h, ow = w;
        size_t nstat = 0;
        switch (l->kind) {
        case L_PAD:
            if (l->pad >= h || l->pad >= w)
                goto small;
            oh = h + 2 * l->pad, ow = w + 2 * l->pad;
            break;
        case L_CONV:
        case L_CONVT:
            if (l->cin != c)
                goto small;
            if ((l->kind == L_CONV
                     ? conv2d_shape(&a->cs[i], n, c, h, w, l->cout, l->k, l->stride, l->pad)
                     : convt2d_shape(&a->cs[i], n, c, h, w, l->cout, l->k, l->stride, l->pad, l->out_pad)))
                goto small;
            oc = l->cout, oh = a->cs[i].hout, ow = a->cs[i].wout;
            size_t wb = l->kind == L_CONV ? conv2d_workspace_bytes(net->be, &a->cs[i])
                                          : convt2d_workspace_bytes(net->be, &a->cs[i]);
            if (wb > ws)
                ws = wb;
            break;
        case L_BN: nstat = (size_t)c; break;
        case L_IN: nstat = (size_t)n * c; break;
        case L_MEAN: oc = 1, oh = 1, ow = 1; break;
        default: break;
        }
        a->c_[i] = oc, a->h_[i] = oh, a->w_[i] = ow;
        size_t nel = (size_t)n * oc * oh * ow;
        if (nel > maxel)
            maxel = nel;
        off[i] = SIZE_MAX;
        if (!in_place(l->kind))
            off[i] = total, total += (nel + 15) / 16 * 16;
        nst[i] = (nstat + 15) / 16 * 16;
        soff[i] = total, total += 2 * nst[i];
        c = oc, h = oh, w = ow;
    }
    a->slab = backend_alloc(net->be, total * sizeof(float));
    if (!a->slab)
        goto fail;
    a->x = a->slab;
    for (int i = 0; i < net->nl; i++) {
        a->out[i] = off[i] != SIZE_MAX ? a->slab + off[i] : (i ? a->out[i - 1] : a->x);
        a->mean[i] = a->slab + soff[i];
        a->rstd[i] = a->mean[i] + nst[i];
    }
    /* the net's shared backward scratch and the backend workspace */
    if (maxel > net->scratch_n) {
        for (int k = 0; k < 3; k++) {
            backend_dealloc(net->be, net->scratch[k]);
            net->scratch[k] = backend_alloc(net->be, maxel * sizeof(float));
            if (!net->scratch[k])
                goto fail;
        }
        net->scratch_n = maxel;
    }
    if (backend_reserve(net->be, ws))
        goto fail;
    return a;
small:
    err_set("net_acts_new: input %dx%dx%d does not fit the network", n, a->h, a->w);
fail:
    net_acts_free(a);
    return NULL;
}

void net_acts_free(struct net_acts *a)
{
    if (!a)
        return;
    backend_dealloc(a->net->be, a->slab);
    free(a);
}

float *net_acts_output(struct net_acts *a, int shape[4])
{
    int i = a->net->nl - 1;
    if (shape)
        shape[0] = a->n, shape[1] = a->c_[i], shape[2] = a->h_[i], shape[3] = a->w_[i];
    return a->out[i];
}

size_t net_acts_output_numel(const struct net_acts *a)
{
    int i = a->net->nl - 1;
    return (size_t)a->n * a->c_[i] * a->h_[i] * a->w_[i];
}

static size_t numel_of(const struct net_acts *a, int i) /* output of layer i, -1 = input */
{
    if (i < 0)
        return (size_t)a->n * 3 * a->h * a->w;
    return (size_t)a->n * a->c_[i] * a->h_[i] * a->w_[i];
}

// ----------------------------------------------------------------------------
// forward and backward

int net_forward(struct net_acts *a, const float *x)
{
    struct net *net = a->net;
    backend_t be = net->be;
    float *P = net->params, *B = net->bufs;
    if (backend_copy(be, a->x, x, numel_of(a, -1) * sizeof(float)))
        return -1;
    a->training = net->training;
    for (int i = 0; i < net->nl; i++) {
        struct layer *l = &net->L[i];
        float *in = i ? a->out[i - 1] : a->x, *out = a->out[i];
        int c = i ? a->c_[i - 1] : 3, h = i ? a->h_[i - 1] : a->h, w = i ? a->w_[i - 1] : a->w;
        long nel = (long)numel_of(a, i);
        int rc = 0;
        switch (l->kind) {
        case L_PAD: rc = reflpad_forward(be, out, in, a->n * c, h, w, l->pad); break;
        case L_CONV: rc = conv2d_forward(be, out, in, P + l->w_off, P + l->b_off, &a->cs[i]); break;
        case L_CONVT: rc = convt2d_forward(be, out, in, P + l->w_off, P + l->b_off, &a->cs[i]); break;
        case L_BN:
            rc = batchnorm_forward(be, out, a->mean[i], a->rstd[i], in, P + l->w_off, P + l->b_off,
                                   B + l->rm_off, B + l->rv_off, a->n, c, h * w, a->training, BN_MOMENTUM,
                                   BN_EPS);
            if (a->training)
                l->nbt++;
            break;
        case L_IN: rc = instnorm_forward(be, out, a->mean[i], a->rstd[i], in, a->n * c, h * w, BN_EPS); break;
        case L_ACT: rc = act_forward(be, out, in, nel, l->act); break;
        case L_RES_BEGIN: break;
        case L_RES_END: rc = tensor_axpy(be, out, 1.0f, a->out[l->skip_from], nel); break;
        case L_MEAN: rc = mean_forward(be, out, in, a->n, (long)c * h * w); break;
        }
        if (rc)
            return err_wrap("forward layer %d (%s)", i, l->name);
    }
    a->forwarded = 1;
    return 0;
}

int net_backward(struct net_acts *a, const float *dout, float *dx)
{
    struct net *net = a->net;
    backend_t be = net->be;
    float *P = net->params, *G = net->grads;
    if (!a->forwarded)
        return err_set("net_backward: no forward to back-propagate");
    float *g = net->scratch[0], *other = net->scratch[1], *skip = net->scratch[2];
    int last = net->nl - 1;
    if (backend_copy(be, g, dout, numel_of(a, last) * sizeof(float)))
        return -1;
    for (int i = last; i >= 0; i--) {
        struct layer *l = &net->L[i];
        float *in = i ? a->out[i - 1] : a->x;
        int c = i ? a->c_[i - 1] : 3, h = i ? a->h_[i - 1] : a->h, w = i ? a->w_[i - 1] : a->w;
        long nel = (long)numel_of(a, i);
        float *din = (i == 0 && !dx) ? NULL : other;
        int rc = 0;
        switch (l->kind) {
        case L_ACT: rc = act_backward(be, g, g, a->out[i], nel, l->act); break;
        case L_RES_END: rc = backend_copy(be, skip, g, nel * sizeof(float)); break;
        case L_RES_BEGIN: rc = tensor_axpy(be, g, 1.0f, skip, nel); break;
        case L_PAD:
            if (din)
                rc = reflpad_backward(be, din, g, a->n * c, h, w, l->pad);
            break;
        case L_CONV:
            rc = conv2d_backward(be, din, G + l->w_off, G + l->b_off, g, in, P + l->w_off, &a->cs[i]);
            break;
        case L_CONVT:
            rc = convt2d_backward(be, din, G + l->w_off, G + l->b_off, g, in, P + l->w_off, &a->cs[i]);
            break;
        case L_BN:
            rc = batchnorm_backward(be, din, G + l->w_off, G + l->b_off, g, in, a->mean[i], a->rstd[i],
                                    P + l->w_off, a->n, c, h * w, a->training);
            break;
        case L_IN:
            if (din)
                rc = instnorm_backward(be, din, g, in, a->mean[i], a->rstd[i], a->n * c, h * w);
            break;
        case L_MEAN:
            if (din)
                rc = mean_backward(be, din, g, a->n, (long)c * h * w);
            break;
        }
        if (rc)
            return err_wrap("backward layer %d (%s)", i, l->name);
        if (!in_place(l->kind)) {
            float *t = g;
            g = other, other = t;
        }
    }
    if (dx)
        return tensor_axpy(be, dx, 1.0f, g, (long)numel_of(a, -1));
    return 0;
}
