/*
 * checkpoint: staging device tensors in host memory for st_writer, and
 * loading them back with shape checks.
 */
#include "checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

struct ckpt_out {
    st_writer *w;
    void **bufs; /* host copies the writer references until saved */
    int nbufs, capbufs;
};

ckpt_out *ckpt_out_new(void)
{
    ckpt_out *c = calloc(1, sizeof *c);
    if (c && !(c->w = st_writer_new())) {
        free(c);
        return NULL;
    }
    return c;
}

void ckpt_out_free(ckpt_out *c)
{
    if (!c)
        return;
    st_writer_free(c->w);
    for (int i = 0; i < c->nbufs; i++)
        free(c->bufs[i]);
    free(c->bufs);
    free(c);
}

/* A host buffer of n bytes kept until the checkpoint is freed. */
static void *stage_(ckpt_out *c, size_t n)
{
    if (c->nbufs == c->capbufs) {
        int cap = c->capbufs ? 2 * c->capbufs : 64;
        void **more = realloc(c->bufs, (size_t)cap * sizeof *more);
        if (!more)
            return NULL;
        c->bufs = more;
        c->capbufs = cap;
    }
    void *p = malloc(n ? n : 1);
    if (p)
        c->bufs[c->nbufs++] = p;
    return p;
}

int ckpt_out_add_f32(ckpt_out *c, const char *name, const int64_t *shape, int ndim, backend_t be,
                     const float *dev)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    float *host = stage_(c, n * sizeof *host);
    if (!host)
        return err_set("out of memory");
    if (backend_download(be, host, dev, n * sizeof *host) != 0)
        return -1;
    return st_writer_add(c->w, name, ST_F32, shape, ndim, host);
}

int ckpt_out_add_i64(ckpt_out *c, const char *name, int64_t value)
{
    int64_t *host = stage_(c, sizeof *host);
    if (!host)
        return err_set("out of memory");
    *host = value;
    return st_writer_add(c->w, name, ST_I64, NULL, 0, host);
}

int ckpt_out_add_f32_scalar(ckpt_out *c, const char *name, float value)
{
    float *host = stage_(c, sizeof *host);
    if (!host)
        return err_set("out of memory");
    *host = value;
    return st_writer_add(c->w, name, ST_F32, NULL, 0, host);
}

int ckpt_out_add_net(ckpt_out *c, const char *prefix, struct net *net)
{
    char name[128];
    for (int i = 0; i < net_tensor_count(net); i++) {
        const struct net_tensor *t = net_tensor_at(net, i);
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        int rc = t->kind == NET_COUNTER
                     ? ckpt_out_add_i64(c, name, *(const int64_t *)t->data)
                     : ckpt_out_add_f32(c, name, t->shape, t->ndim, net_backend(net), t->data);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int ckpt_out_meta(ckpt_out *c, const char *key, const char *value)
{
    return st_writer_meta(c->w, key, value);
}

int ckpt_out_save(ckpt_out *c, const char *path)
{
    return st_writer_save(c->w, path);
}

// ----------------------------------------------------------------------------
// Loading

int ckpt_check_format(const char *label, const char *format, const char *version)
{
    /* absent keys: a plain safetensors file (or a hand-made one), judged by its tensors */
    if (format && strcmp(format, CKPT_FORMAT) != 0)
        return err_set("%s: metadata 'format' is '%.60s', not '%s' (not an aging-cyclegan checkpoint)", label,
                       format, CKPT_FORMAT);
    if (version && strcmp(version, CKPT_FORMAT_VERSION) != 0)
        return err_set("%s: metadata 'format_version' is '%.60s'; this build reads version %s (HINT: a "
                       "newer build may read it)",
                       label, version, CKPT_FORMAT_VERSION);
    return 0;
}

int ckpt_check_st_format(const st_file *f)
{
    return ckpt_check_format(st_path(f), st_meta(f, "format"), st_meta(f, "format_version"));
}

bool ckpt_has_net(const st_file *f, const char *prefix)
{
    return st_prefix_range(f, prefix, NULL) > 0;
}

/* The tensor prefix+suffix with ndim dimensions, or NULL + message. */
static const st_tensor *need_(const st_file *f, const char *prefix, const char *suffix, int ndim)
{
    char name[128];
    snprintf(name, sizeof name, "%s%s", prefix, suffix);
    const st_tensor *t = st_get(f, name);
    if (!t)
        return NULL;
    if (t->ndim != ndim) {
        err_set("%s: tensor '%s' has %d dimensions, expected %d", st_path(f), name, t->ndim, ndim);
        return NULL;
    }
    return t;
}

// ----------------------------------------------------------------------------
// Checking a file against a network before building it: every tensor the
// network has must be in the file with its exact shape and a readable dtype,
// and the file may hold nothing else under the prefix.  The network's size
// is then bounded by the bytes the file holds.

struct check_ {
    const st_file *f;
    const char *prefix;
    char (*names)[64]; /* the network's names, to name an unexpected tensor */
    int n, cap;
};

static int check_one_(const struct net_tensor *t, void *ctx)
{
    struct check_ *c = ctx;
    char name[128];
    snprintf(name, sizeof name, "%s%s", c->prefix, t->name);
    const st_tensor *s = st_get(c->f, name);
    if (!s)
        return -1;
    int same = s->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++)
        same = s->shape[d] == t->shape[d];
    if (!same) {
        char a[160], b[160];
        size_t ua = 0, ub = 0;
        for (int d = 0; d < s->ndim && ua < sizeof a; d++)
            ua += (size_t)snprintf(a + ua, sizeof a - ua, "%s%lld", d ? "," : "", (long long)s->shape[d]);
        for (int d = 0; d < t->ndim && ub < sizeof b; d++)
            ub += (size_t)snprintf(b + ub, sizeof b - ub, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        a[sizeof a - 1] = b[sizeof b - 1] = 0;
        return err_set("%s: tensor '%s' has shape [%s] but the model expects [%s]", st_path(c->f), name,
                       s->ndim ? a : "", t->ndim ? b : "");
    }
    int is_float = s->dtype == ST_F32 || s->dtype == ST_F16 || s->dtype == ST_BF16 || s->dtype == ST_F64;
    if (t->kind == NET_COUNTER ? s->dtype != ST_I64 : !is_float)
        return err_set("%s: tensor '%s' is %s but %s is expected", st_path(c->f), name,
                       st_dtype_name(s->dtype), t->kind == NET_COUNTER ? "I64" : "F32 (or F16, BF16, F64)");
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 256;
        char(*more)[64] = realloc(c->names, (size_t)cap * sizeof *more);
        if (!more)
            return err_set("out of memory");
        c->names = more;
        c->cap = cap;
    }
    memcpy(c->names[c->n++], t->name, sizeof t->name);
    return 0;
}

static int cmp_name64_(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* After every expected tensor was found: anything else under the prefix? */
static int check_extra_(struct check_ *c, const char *what)
{
    int first = 0, n = st_prefix_range(c->f, c->prefix, &first);
    if (n == c->n)
        return 0;
    qsort(c->names, (size_t)c->n, sizeof *c->names, cmp_name64_);
    size_t pl = strlen(c->prefix);
    for (int k = 0; k < n; k++) {
        const char *name = st_by_name(c->f, first + k)->name;
        if (strlen(name + pl) >= sizeof *c->names ||
            !bsearch(name + pl, c->names, (size_t)c->n, sizeof *c->names, cmp_name64_))
            return err_set("%s: tensor '%s' is not part of the %s its other tensors describe", st_path(c->f),
                           name, what);
    }
    return err_set("%s: %d tensors under '%s', the %s has %d", st_path(c->f), n, c->prefix, what, c->n);
}

/* The walk's result (rc from gen/disc_each_tensor over check_one_), then
 * the check for extra tensors; frees c. */
static int check_done_(struct check_ *c, int rc, const char *what)
{
    if (!rc)
        rc = check_extra_(c, what);
    free(c->names);
    return rc ? -1 : 0;
}

static int check_gen_(const st_file *f, const char *prefix, const struct gen_config *g)
{
    struct check_ c = {f, prefix, NULL, 0, 0};
    char what[96];
    snprintf(what, sizeof what, "generator (ngf %d, %d blocks)", g->ngf, g->n_blocks);
    return check_done_(&c, gen_each_tensor(g, check_one_, &c), what);
}

static int check_disc_(const st_file *f, const char *prefix, const struct disc_config *d)
{
    struct check_ c = {f, prefix, NULL, 0, 0};
    char what[96];
    snprintf(what, sizeof what, "discriminator (ndf %d)", d->ndf);
    return check_done_(&c, disc_each_tensor(d, check_one_, &c), what);
}

int ckpt_gen_config(const st_file *f, const char *prefix, struct gen_config *cfg)
{
    const st_tensor *t = need_(f, prefix, "model.1.weight", 4);
    if (!t)
        return -1; /* "path: missing tensor 'G.model.1.weight'" */
    if (t->shape[1] != 3 || t->shape[2] != 7 || t->shape[0] < 1 || t->shape[0] > NET_MAX_WIDTH)
        return err_set(
            "%s: '%smodel.1.weight' of shape [%lld,%lld,%lld,%lld] is not a generator's first conv",
            st_path(f), prefix, (long long)t->shape[0], (long long)t->shape[1], (long long)t->shape[2],
            (long long)t->shape[3]);
    struct gen_config g = {(int)t->shape[0], 0};
    /* Residual blocks are modules 10, 11, ... each with conv_block.1. */
    char name[128];
    for (;; g.n_blocks++) {
        snprintf(name, sizeof name, "%smodel.%d.conv_block.1.weight", prefix, 10 + g.n_blocks);
        if (!st_get(f, name))
            break;
        if (g.n_blocks == NET_GEN_MAX_BLOCKS)
            return err_set("%s: generator under '%s' has more than %d residual blocks", st_path(f), prefix,
                           NET_GEN_MAX_BLOCKS);
    }
    if (g.n_blocks == 0)
        return err_set("%s: generator under '%s' has no residual blocks", st_path(f), prefix);
    if (check_gen_(f, prefix, &g))
        return -1;
    *cfg = g;
    return 0;
}

int ckpt_disc_config(const st_file *f, const char *prefix, struct disc_config *cfg)
{
    const st_tensor *t = need_(f, prefix, "model.0.weight", 4);
    if (!t)
        return -1; /* "path: missing tensor 'DX.model.0.weight'" */
    if (t->shape[1] != 3 || t->shape[2] != 4 || t->shape[0] < 1 || t->shape[0] > NET_MAX_WIDTH)
        return err_set("%s: '%smodel.0.weight' is not a discriminator's first conv", st_path(f), prefix);
    struct disc_config d = {(int)t->shape[0]};
    if (check_disc_(f, prefix, &d))
        return -1;
    *cfg = d;
    return 0;
}

int ckpt_load_f32(const st_file *f, const char *name, const int64_t *shape, int ndim, backend_t be,
                  float *dev)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    float *host = malloc((n ? n : 1) * sizeof *host);
    if (!host)
        return err_set("out of memory");
    int rc = st_read_f32(f, name, host, shape, ndim);
    if (rc == 0)
        rc = backend_upload(be, dev, host, n * sizeof *host);
    free(host);
    return rc;
}

int ckpt_load_net(const st_file *f, const char *prefix, struct net *net)
{
    char name[128];
    for (int i = 0; i < net_tensor_count(net); i++) {
        const struct net_tensor *t = net_tensor_at(net, i);
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        int rc = t->kind == NET_COUNTER
                     ? st_read(f, name, ST_I64, t->data, NULL, 0)
                     : ckpt_load_f32(f, name, t->shape, t->ndim, net_backend(net), t->data);
        if (rc != 0)
            return -1;
    }
    return 0;
}
