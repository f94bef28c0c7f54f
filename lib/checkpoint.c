/*
 * checkpoint: staging device tensors in host memory for st_writer, and
 * loading them back with shape checks.
 */
#include "checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

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

bool ckpt_has_net(const st_file *f, const char *prefix)
{
    char name[128];
    snprintf(name, sizeof name, "%smodel.0.weight", prefix);
    if (st_get(f, name))
        return true;
    snprintf(name, sizeof name, "%smodel.1.weight", prefix);
    return st_get(f, name) != NULL;
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
        err_set("tensor '%s' has %d dimensions, expected %d", name, t->ndim, ndim);
        return NULL;
    }
    return t;
}

int ckpt_gen_config(const st_file *f, const char *prefix, struct gen_config *cfg)
{
    const st_tensor *t = need_(f, prefix, "model.1.weight", 4);
    if (!t)
        return err_wrap("not a generator checkpoint under '%s'", prefix);
    if (t->shape[1] != 3 || t->shape[2] != 7 || t->shape[0] < 1 || t->shape[0] > 4096)
        return err_set("'%smodel.1.weight' of shape [%lld,%lld,%lld,%lld] is not a generator's first conv",
                       prefix, (long long)t->shape[0], (long long)t->shape[1], (long long)t->shape[2],
                       (long long)t->shape[3]);
    cfg->ngf = (int)t->shape[0];
    /* Residual blocks are modules 10, 11, ... each with conv_block.1. */
    char name[128];
    int n = 0;
    for (;; n++) {
        snprintf(name, sizeof name, "%smodel.%d.conv_block.1.weight", prefix, 10 + n);
        if (!st_get(f, name))
            break;
    }
    if (n == 0)
        return err_set("generator under '%s' has no residual blocks", prefix);
    cfg->n_blocks = n;
    return 0;
}

int ckpt_disc_config(const st_file *f, const char *prefix, struct disc_config *cfg)
{
    const st_tensor *t = need_(f, prefix, "model.0.weight", 4);
    if (!t)
        return err_wrap("not a discriminator checkpoint under '%s'", prefix);
    if (t->shape[1] != 3 || t->shape[2] != 4 || t->shape[0] < 1 || t->shape[0] > 4096)
        return err_set("'%smodel.0.weight' is not a discriminator's first conv", prefix);
    cfg->ndf = (int)t->shape[0];
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
