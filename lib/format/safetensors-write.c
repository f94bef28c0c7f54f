/*
 * safetensors-write: the writer of lib/format/safetensors.h.  It builds the
 * JSON header by hand and streams the caller's tensor data to the output
 * (lib/base/fileout.h: a temporary file renamed over a regular file, a FIFO
 * or device written in place) or to memory.  The reader is safetensors.c.
 */
#include "safetensors.h"

#include "base/err.h"
#include "base/fileout.h"
#include "base/strmap.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors-write.c assumes a little-endian host (the file data is little-endian)"
#endif

typedef struct st_entry_ {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;
    uint64_t nbytes;
} st_entry_;

struct st_writer {
    st_entry_ *e;
    int n, cap;
    strmap names; /* tensor name -> index in e, for the duplicate check */
    char **meta;  /* nmeta (key, value) pairs, owned */
    int nmeta, meta_cap;
};

st_writer *st_writer_new(void)
{
    st_writer *w = calloc(1, sizeof *w);
    if (!w)
        err_set("out of memory");
    return w;
}

void st_writer_free(st_writer *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n; i++)
        free(w->e[i].name);
    for (int i = 0; i < 2 * w->nmeta; i++)
        free(w->meta[i]);
    free(w->e);
    free(w->meta);
    strmap_free(&w->names);
    free(w);
}

int st_writer_add(st_writer *w, const char *name, st_dtype dtype, const int64_t *shape, int ndim,
                  const void *data)
{
    if (!name || strcmp(name, "__metadata__") == 0)
        return err_set("safetensors: '%s' cannot be a tensor name", name ? name : "(null)");
    if ((unsigned)dtype >= ST_DTYPE_COUNT)
        return err_set("safetensors: tensor '%s': invalid dtype %d", name, (int)dtype);
    if (ndim < 0 || ndim > ST_MAX_DIMS)
        return err_set("safetensors: tensor '%s': %d dimensions (0 to %d allowed)", name, ndim, ST_MAX_DIMS);
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (double)shape[i] > ST_MAX_INT)
            return err_set("safetensors: tensor '%s': dimension %d is %" PRId64, name, i, shape[i]);
        if (shape[i] && numel > UINT64_MAX / (uint64_t)shape[i] / 8)
            return err_set("safetensors: tensor '%s': shape is too large", name);
        numel *= (uint64_t)shape[i];
    }
    uint64_t nbytes = numel * st_dtype_size(dtype);
    if (nbytes && !data)
        return err_set("safetensors: tensor '%s': no data for %" PRIu64 " bytes", name, nbytes);
    if (strmap_get(&w->names, name, strlen(name)) >= 0)
        return err_set("safetensors: tensor '%s' added twice", name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        st_entry_ *ne = realloc(w->e, (size_t)cap * sizeof *ne);
        if (!ne)
            return err_set("safetensors: out of memory");
        w->e = ne;
        w->cap = cap;
    }
    st_entry_ *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name)))
        return err_set("safetensors: out of memory");
    if (strmap_put(&w->names, e->name, strlen(e->name), w->n, NULL) < 0) {
        free(e->name);
        return -1;
    }
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        e->shape[i] = shape[i];
    e->data = data;
    e->nbytes = nbytes;
    w->n++;
    return 0;
}

int st_writer_meta(st_writer *w, const char *key, const char *value)
{
    if (!key || !value)
        return err_set("safetensors: metadata key and value must not be NULL");
    char *v = strdup(value);
    if (!v)
        return err_set("safetensors: out of memory");
    for (int i = 0; i < w->nmeta; i++)
        if (strcmp(w->meta[2 * i], key) == 0) {
            free(w->meta[2 * i + 1]);
            w->meta[2 * i + 1] = v;
            return 0;
        }
    if (w->nmeta == w->meta_cap) {
        int cap = w->meta_cap ? 2 * w->meta_cap : 16;
        char **nm = realloc(w->meta, (size_t)cap * 2 * sizeof *nm);
        if (!nm) {
            free(v);
            return err_set("safetensors: out of memory");
        }
        w->meta = nm;
        w->meta_cap = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return err_set("safetensors: out of memory");
    }
    w->meta[2 * w->nmeta] = k;
    w->meta[2 * w->nmeta + 1] = v;
    w->nmeta++;
    return 0;
}

/* A growing string for the header. */
typedef struct sbuf_ {
    char *p;
    size_t len, cap;
    int oom;
} sbuf_;

static void sb_put_(sbuf_ *s, const char *src, size_t n)
{
    if (s->oom)
        return;
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (s->len + n + 1 > cap)
            cap *= 2;
        char *np = realloc(s->p, cap);
        if (!np) {
            s->oom = 1;
            return;
        }
        s->p = np;
        s->cap = cap;
    }
    memcpy(s->p + s->len, src, n);
    s->len += n;
    s->p[s->len] = 0;
}

static void sb_str_(sbuf_ *s, const char *str)
{
    sb_put_(s, str, strlen(str));
}

/* A JSON string literal: quotes, backslash and control bytes escaped,
 * other bytes (UTF-8) as they are. */
static void sb_json_(sbuf_ *s, const char *str)
{
    sb_put_(s, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)str; *c; c++) {
        char esc[8];
        if (*c == '"' || *c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*c;
            sb_put_(s, esc, 2);
        } else if (*c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *c);
            sb_put_(s, esc, 6);
        } else {
            sb_put_(s, (const char *)c, 1);
        }
    }
    sb_put_(s, "\"", 1);
}

/* Layout order: descending element size, then insertion order. */
static _Thread_local const st_entry_ *order_base_;
static int cmp_layout_(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    size_t sx = st_dtype_size(order_base_[x].dtype), sy = st_dtype_size(order_base_[y].dtype);
    if (sx != sy)
        return sx > sy ? -1 : 1;
    return (x > y) - (x < y);
}

/* The file's bytes, handed to put(ctx, ...) in order: the header, then the
 * tensors' data straight from the caller's memory.  path names the file in
 * messages; put sets its own. */
static int emit_(const st_writer *w, const char *path, int (*put)(void *ctx, const void *p, size_t n),
                 void *ctx)
{
    int rc = -1;
    int *order = malloc(((size_t)w->n + 1) * sizeof *order);
    sbuf_ h = {0};
    if (!order) {
        err_set("%s: out of memory", path);
        goto out;
    }
    for (int i = 0; i < w->n; i++)
        order[i] = i;
    order_base_ = w->e;
    qsort(order, (size_t)w->n, sizeof *order, cmp_layout_);

    /* The header: __metadata__ first, then tensors in layout order. */
    sb_str_(&h, "{");
    if (w->nmeta) {
        sb_str_(&h, "\"__metadata__\":{");
        for (int i = 0; i < w->nmeta; i++) {
            if (i)
                sb_str_(&h, ",");
            sb_json_(&h, w->meta[2 * i]);
            sb_str_(&h, ":");
            sb_json_(&h, w->meta[2 * i + 1]);
        }
        sb_str_(&h, "}");
    }
    uint64_t at = 0;
    for (int k = 0; k < w->n; k++) {
        const st_entry_ *e = &w->e[order[k]];
        char num[64];
        if (k || w->nmeta)
            sb_str_(&h, ",");
        sb_json_(&h, e->name);
        sb_str_(&h, ":{\"dtype\":\"");
        sb_str_(&h, st_dtype_name(e->dtype));
        sb_str_(&h, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            snprintf(num, sizeof num, "%s%" PRId64, d ? "," : "", e->shape[d]);
            sb_str_(&h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", at, at + e->nbytes);
        sb_str_(&h, num);
        at += e->nbytes;
    }
    sb_str_(&h, "}");
    while (h.len % 8)
        sb_str_(&h, " "); /* data area starts 8-byte aligned */
    if (h.oom) {
        err_set("%s: out of memory for the header", path);
        goto out;
    }
    if (h.len > ST_MAX_HEADER) {
        err_set("%s: header of %zu bytes is over the 100 MB limit", path, h.len);
        goto out;
    }

    uint64_t hlen = h.len;
    if (put(ctx, &hlen, 8) || put(ctx, h.p, h.len))
        goto out;
    for (int k = 0; k < w->n; k++) {
        const st_entry_ *e = &w->e[order[k]];
        if (e->nbytes && put(ctx, e->data, e->nbytes))
            goto out;
    }
    rc = 0;
out:
    free(h.p);
    free(order);
    return rc;
}

static int put_file_(void *ctx, const void *p, size_t n)
{
    return fileout_write(ctx, p, n);
}

int st_writer_save(const st_writer *w, const char *path)
{
    fileout *f = fileout_open(path);
    if (!f)
        return -1;
    int rc = emit_(w, path, put_file_, f);
    return fileout_close(f, rc == 0) != 0 ? -1 : rc;
}

struct membuf_ {
    uint8_t *p;
    size_t len, cap;
};

static int put_mem_(void *ctx, const void *p, size_t n)
{
    struct membuf_ *m = ctx;
    if (n == 0)
        return 0;
    if (n > m->cap - m->len) {
        size_t cap = m->cap ? m->cap : 1 << 16;
        while (cap - m->len < n)
            cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
        uint8_t *more = realloc(m->p, cap);
        if (!more)
            return err_set("out of memory for %zu bytes", cap);
        m->p = more;
        m->cap = cap;
    }
    memcpy(m->p + m->len, p, n);
    m->len += n;
    return 0;
}

int st_writer_to_memory(const st_writer *w, uint8_t **data, size_t *n)
{
    struct membuf_ m = {0};
    if (emit_(w, "safetensors", put_mem_, &m) != 0) {
        free(m.p);
        return -1;
    }
    *data = m.p;
    *n = m.len;
    return 0;
}
