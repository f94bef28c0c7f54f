/*
 * torchfile: torch.save checkpoints (zip through libzip, or legacy) read into
 * a flat tf_set (torchfile.h).  The pickle itself is lib/format/pickle.c;
 * this file knows the containers, the persistent-id storages, strided tensor
 * views and the mapping of the reference project's checkpoint dict to flat
 * names.  Writing tf_sets back as torch zip checkpoints is torchfile-write.c.
 */
#include "torchfile.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "base/err.h"
#include "pickle.h"
#include "torchfile-impl.h"

#define FORMAT_VERSION "1"
#define META_JSON_MAX  (1u << 20)

// ----------------------------------------------------------------------------
// tf_set basics

void tf_set_init(tf_set *s)
{
    memset(s, 0, sizeof *s);
}

void tf_set_free(tf_set *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++)
        free(s->t[i].name);
    for (int i = 0; i < s->nmeta; i++) {
        free(s->meta_key[i]);
        free(s->meta_val[i]);
    }
    for (int i = 0; i < s->nowned; i++)
        free(s->owned[i]);
    free(s->t);
    free(s->meta_key);
    free(s->meta_val);
    free(s->owned);
    st_free(s->st);
    strmap_free(&s->by_name);
    strmap_free(&s->by_key);
    tf_set_init(s);
}

int tf_grow(void **p, int *cap, int n, size_t elem)
{
    if (n < *cap)
        return 0;
    int nc = *cap ? 2 * *cap : 32;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q)
        return err_set("out of memory");
    *p = q;
    *cap = nc;
    return 0;
}

static int own(tf_set *s, void *p)
{
    if (!p)
        return err_set("out of memory");
    if (tf_grow((void **)&s->owned, &s->capowned, s->nowned, sizeof *s->owned)) {
        free(p);
        return -1;
    }
    s->owned[s->nowned++] = p;
    return 0;
}

int tf_set_add(tf_set *s, const char *name, st_dtype dt, const int64_t *shape, int ndim, const void *data,
               size_t nbytes, int copy)
{
    if (ndim < 0 || ndim > ST_MAX_DIMS)
        return err_set("tensor '%s' has %d dimensions (at most %d)", name, ndim, ST_MAX_DIMS);
    if (tf_set_find(s, name))
        return err_set("tensor '%s' appears twice", name);
    if (s->n >= ST_MAX_TENSORS)
        return err_set("more than %d tensors (a training checkpoint has about 1000)", ST_MAX_TENSORS);
    if (tf_grow((void **)&s->t, &s->cap, s->n, sizeof *s->t) || !s->t)
        return -1;
    tf_tensor *t = &s->t[s->n];
    memset(t, 0, sizeof *t);
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= shape[i];
    }
    if (copy) {
        void *c = malloc(nbytes ? nbytes : 1);
        if (own(s, c))
            return -1;
        if (nbytes)
            memcpy(c, data, nbytes);
        data = c;
    }
    if (!(t->name = strdup(name)))
        return err_set("out of memory");
    if (strmap_put(&s->by_name, t->name, strlen(t->name), s->n, NULL) < 0) {
        free(t->name);
        return -1;
    }
    t->dtype = dt;
    t->ndim = ndim;
    t->data = data;
    t->nbytes = nbytes;
    s->n++;
    return 0;
}

int tf_set_meta(tf_set *s, const char *key, const char *value)
{
    char *v = strdup(value);
    if (!v)
        return err_set("out of memory");
    int i = strmap_get(&s->by_key, key, strlen(key));
    if (i >= 0) {
        free(s->meta_val[i]);
        s->meta_val[i] = v;
        return 0;
    }
    if (s->nmeta >= ST_MAX_META) {
        free(v);
        return err_set("more than %d metadata keys (a checkpoint has tens)", ST_MAX_META);
    }
    int capk = s->capmeta;
    if (tf_grow((void **)&s->meta_key, &capk, s->nmeta, sizeof *s->meta_key) ||
        tf_grow((void **)&s->meta_val, &s->capmeta, s->nmeta, sizeof *s->meta_val)) {
        free(v);
        return -1;
    }
    char *k = strdup(key);
    if (!k || strmap_put(&s->by_key, k, strlen(k), s->nmeta, NULL) < 0) {
        free(k);
        free(v);
        return err_set("out of memory");
    }
    s->meta_key[s->nmeta] = k;
    s->meta_val[s->nmeta++] = v;
    return 0;
}

const char *tf_set_get_meta(const tf_set *s, const char *key)
{
    int i = strmap_get(&s->by_key, key, strlen(key));
    return i >= 0 ? s->meta_val[i] : NULL;
}

const tf_tensor *tf_set_find(const tf_set *s, const char *name)
{
    int i = strmap_get(&s->by_name, name, strlen(name));
    return i >= 0 ? &s->t[i] : NULL;
}

int tf_is_buffer_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    const char *last = dot ? dot + 1 : name;
    return !strcmp(last, "running_mean") || !strcmp(last, "running_var") ||
           !strcmp(last, "num_batches_tracked");
}

static int dtype_pk_to_st(pk_dtype t, st_dtype *out)
{
    static const int map[PK_DTYPE_COUNT] = {ST_F32, ST_F64, ST_F16, ST_BF16, ST_I64, ST_I32,
                                            ST_I16, ST_I8,  ST_U8,  ST_BOOL, ST_C64, -1};
    if ((unsigned)t >= PK_DTYPE_COUNT || map[t] < 0)
        return err_set("%s tensors are not supported", pk_dtype_name(t));
    *out = (st_dtype)map[t];
    return 0;
}

// ----------------------------------------------------------------------------
// reading .pth

struct store {
    const char *key;
    pk_dtype dtype;
    int64_t numel;
    const uint8_t *data; /* numel * elem bytes */
};

struct reader {
    const char *path;
    const uint8_t *map;
    size_t size;
    zip_t *za;
    char root[256];
    pk_doc *doc;
    struct store *st;
    size_t nst, capst;
    strmap by_key;      /* storage key -> index in st */
    uint64_t out_bytes; /* bytes of tensors materialised so far */
    tf_set *out;
};

static const struct store *find_store(const struct reader *r, const char *key)
{
    int i = strmap_get(&r->by_key, key, strlen(key));
    return i >= 0 ? &r->st[i] : NULL;
}

/* Read member "<root>/<rel>" whole.  expect >= 0: the size it must have. */
static int zip_member(struct reader *r, const char *rel, uint64_t max, int64_t expect, uint8_t **out,
                      size_t *len)
{
    char name[512];
    snprintf(name, sizeof name, "%s/%s", r->root, rel);
    zip_int64_t idx = zip_name_locate(r->za, name, ZIP_FL_ENC_RAW);
    if (idx < 0)
        return err_set("%s: missing member '%s'", r->path, name);
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(r->za, (zip_uint64_t)idx, 0, &st) != 0)
        return err_set("%s: %s: %s", r->path, name, zip_strerror(r->za));
    zip_uint64_t need = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
    if ((st.valid & need) != need)
        return err_set("%s: %s: sizes unknown", r->path, name);
    if (st.comp_size > r->size)
        return err_set("%s: member '%s' declares %llu bytes, more than the %zu-byte file", r->path, name,
                       (unsigned long long)st.comp_size, r->size);
    if (st.comp_method == ZIP_CM_STORE) {
        if (st.size != st.comp_size)
            return err_set("%s: member '%s' is stored but its sizes differ", r->path, name);
    } else if (st.comp_method == ZIP_CM_DEFLATE) {
        if (st.size / 1032 > st.comp_size + 1) /* beyond deflate's best ratio: a bomb */
            return err_set("%s: member '%s' declares %llu bytes from %llu compressed", r->path, name,
                           (unsigned long long)st.size, (unsigned long long)st.comp_size);
    } else
        return err_set("%s: member '%s' uses unsupported compression %d", r->path, name, (int)st.comp_method);
    if (expect >= 0 && st.size != (zip_uint64_t)expect)
        return err_set("%s: member '%s' holds %llu bytes but its storage needs %lld", r->path, name,
                       (unsigned long long)st.size, (long long)expect);
    if (st.size > max)
        return err_set("%s: member '%s' is larger than %llu bytes", r->path, name, (unsigned long long)max);
    uint8_t *buf = malloc(st.size ? st.size : 1);
    if (!buf)
        return err_set("out of memory reading '%s'", name);
    zip_file_t *zf = zip_fopen_index(r->za, (zip_uint64_t)idx, 0);
    zip_int64_t got = zf ? zip_fread(zf, buf, st.size) : -1;
    uint8_t extra;
    zip_int64_t more = got == (zip_int64_t)st.size ? zip_fread(zf, &extra, 1) : -1; /* EOF checks the CRC */
    if (got != (zip_int64_t)st.size || more != 0) {
        err_set("%s: cannot read member '%s': %s", r->path, name,
                zf ? zip_error_strerror(zip_file_get_error(zf)) : zip_strerror(r->za));
        if (zf)
            zip_fclose(zf);
        free(buf);
        return -1;
    }
    zip_fclose(zf);
    *out = buf;
    *len = st.size;
    return 0;
}

static int add_store(struct reader *r, const pk_value *s, const uint8_t *data)
{
    const struct store *old = find_store(r, s->u.storage.key);
    if (old) {
        if (old->dtype != s->u.storage.dtype || old->numel != s->u.storage.numel)
            return err_set("%s: storage '%s' is named with two types or sizes", r->path, s->u.storage.key);
        return 0;
    }
    if (r->nst == r->capst) {
        size_t cap = r->capst ? 2 * r->capst : 64;
        struct store *st = realloc(r->st, cap * sizeof *st);
        if (!st)
            return err_set("out of memory");
        r->st = st;
        r->capst = cap;
    }
    if (strmap_put(&r->by_key, s->u.storage.key, strlen(s->u.storage.key), (int)r->nst, NULL) < 0)
        return -1;
    r->st[r->nst++] = (struct store){s->u.storage.key, s->u.storage.dtype, s->u.storage.numel, data};
    return 0;
}

/* numel * elem size with overflow and plausibility checks. */
static int storage_bytes(const struct reader *r, const pk_value *s, uint64_t *nb)
{
    uint64_t es = pk_dtype_size(s->u.storage.dtype);
    if ((uint64_t)s->u.storage.numel > r->size / es + 1)
        return err_set("%s: storage '%s' declares %lld elements, more than the file holds", r->path,
                       s->u.storage.key, (long long)s->u.storage.numel);
    *nb = (uint64_t)s->u.storage.numel * es;
    return 0;
}

static int open_zip(struct reader *r)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(r->map, r->size, 0, &ze);
    if (src)
        r->za = zip_open_from_source(src, ZIP_RDONLY, &ze);
    if (!r->za) {
        err_set("%s: not a readable zip archive: %s", r->path, zip_error_strerror(&ze));
        zip_source_free(src);
        zip_error_fini(&ze);
        return -1;
    }
    zip_error_fini(&ze);
    const char *first = zip_get_num_entries(r->za, 0) > 0 ? zip_get_name(r->za, 0, ZIP_FL_ENC_RAW) : NULL;
    const char *slash = first ? strchr(first, '/') : NULL;
    if (!slash || slash == first || (size_t)(slash - first) >= sizeof r->root)
        return err_set("%s: zip archive without a root folder (not a torch.save file)", r->path);
    memcpy(r->root, first, (size_t)(slash - first));
    r->root[slash - first] = 0;
    uint8_t *pkl = NULL;
    size_t len = 0;
    if (zip_member(r, "data.pkl", TF_MAX_PICKLE, -1, &pkl, &len) || own(r->out, pkl))
        return -1;
    char label[600];
    snprintf(label, sizeof label, "%s: %s/data.pkl", r->path, r->root);
    if (!(r->doc = pk_parse(pkl, len, NULL, label)))
        return -1;
    for (size_t i = 0; i < pk_storage_count(r->doc); i++) {
        const pk_value *s = pk_storage_at(r->doc, i);
        if (find_store(r, s->u.storage.key))
            continue;
        uint64_t nb = 0;
        uint8_t *data = NULL;
        size_t got = 0;
        char rel[300];
        if (strlen(s->u.storage.key) > 200 || strchr(s->u.storage.key, '/'))
            return err_set("%s: bad storage key", r->path);
        snprintf(rel, sizeof rel, "data/%s", s->u.storage.key);
        if (storage_bytes(r, s, &nb) || zip_member(r, rel, nb, (int64_t)nb, &data, &got) ||
            own(r->out, data) || add_store(r, s, data))
            return -1;
    }
    snprintf(r->out->format, sizeof r->out->format, "torch zip (root '%.40s')", r->root);
    return 0;
}

static pk_doc *next_pickle(struct reader *r, size_t *off, const char *what)
{
    char label[300];
    snprintf(label, sizeof label, "%s: %s pickle", r->path, what);
    size_t used = 0;
    pk_doc *d = pk_parse(r->map + *off, r->size - *off, &used, label);
    *off += used;
    return d;
}

static int open_legacy(struct reader *r)
{
    static const uint8_t magic[10] = {0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19};
    size_t off = 0;
    pk_doc *d = next_pickle(r, &off, "magic");
    const pk_value *v = pk_root(d);
    int ok = v && v->type == PK_BIGINT && v->u.str.len == 10 && !memcmp(v->u.str.s, magic, 10);
    pk_free(d);
    if (!ok)
        return v ? err_set("%s: bad legacy magic number", r->path) : -1;
    d = next_pickle(r, &off, "protocol");
    v = pk_root(d);
    ok = v && v->type == PK_INT && v->u.i == 1001;
    pk_free(d);
    if (!ok)
        return v ? err_set("%s: legacy protocol version is not 1001", r->path) : -1;
    d = next_pickle(r, &off, "sys_info");
    v = pk_dict_get(pk_root(d), "little_endian");
    ok = v && v->type == PK_BOOL && v->u.b;
    pk_free(d);
    if (!ok)
        return err_set("%s: legacy file is not little-endian (or has no sys_info)", r->path);
    if (!(r->doc = next_pickle(r, &off, "main")))
        return -1;
    pk_doc *keys = next_pickle(r, &off, "storage key list");
    v = pk_root(keys);
    if (!v || v->type != PK_LIST) {
        pk_free(keys);
        return v ? err_set("%s: storage key list is not a list", r->path) : -1;
    }
    /* the main pickle's storages by key (the first of each key; add_store
     * checks that the others agree) */
    strmap used = {0};
    int rc = 0;
    for (size_t j = 0; j < pk_storage_count(r->doc) && !rc; j++) {
        const char *key = pk_storage_at(r->doc, j)->u.storage.key;
        rc = strmap_put(&used, key, strlen(key), (int)j, NULL) < 0 ? -1 : 0;
    }
    for (size_t i = 0; i < v->u.seq.n && !rc; i++) {
        const pk_value *k = v->u.seq.items[i], *s = NULL;
        int j = k->type == PK_STR ? strmap_get(&used, k->u.str.s, strlen(k->u.str.s)) : -1;
        if (j >= 0)
            s = pk_storage_at(r->doc, (size_t)j);
        uint64_t nb = 0, count = 0;
        if (!s)
            rc = err_set("%s: storage key %zu is not used by the checkpoint", r->path, i);
        else if (r->size - off < 8)
            rc = err_set("%s: truncated before storage '%s'", r->path, s->u.storage.key);
        else {
            for (int b = 7; b >= 0; b--)
                count = count << 8 | r->map[off + (size_t)b];
            off += 8;
            if (count != (uint64_t)s->u.storage.numel)
                rc = err_set("%s: storage '%s' holds %llu elements, its tensors say %lld", r->path,
                             s->u.storage.key, (unsigned long long)count, (long long)s->u.storage.numel);
            else if (!(rc = storage_bytes(r, s, &nb)) && nb > r->size - off)
                rc = err_set("%s: truncated in storage '%s'", r->path, s->u.storage.key);
            else if (!rc && !(rc = add_store(r, s, r->map + off)))
                off += nb;
        }
    }
    pk_free(keys);
    strmap_free(&used);
    if (!rc && off != r->size)
        rc = err_set("%s: %zu bytes of garbage after the last storage", r->path, r->size - off);
    snprintf(r->out->format, sizeof r->out->format, "torch legacy");
    return rc;
}

/* Copy tensor t out of its storage in C order into an owned buffer. */
static int materialise(struct reader *r, const char *name, const pk_value *t)
{
    const pk_value *sv = t->u.tensor.storage;
    const struct store *s = find_store(r, sv->u.storage.key);
    if (!s)
        return err_set("%s: tensor '%s': storage '%s' has no data", r->path, name, sv->u.storage.key);
    if (s->dtype != sv->u.storage.dtype)
        return err_set("%s: tensor '%s': storage '%s' read as two types", r->path, name, s->key);
    st_dtype dt = ST_F32;
    if (dtype_pk_to_st(s->dtype, &dt))
        return err_wrap("%s: tensor '%s'", r->path, name);
    int nd = t->u.tensor.ndim;
    const int64_t *shape = t->u.tensor.shape, *stride = t->u.tensor.stride;
    int64_t numel = 1, last = t->u.tensor.offset;
    for (int i = 0; i < nd; i++)
        if (__builtin_mul_overflow(numel, shape[i], &numel) || numel > (int64_t)1 << 40)
            return err_set("%s: tensor '%s' is too large", r->path, name);
    if (numel > 0)
        for (int i = 0; i < nd; i++) {
            int64_t span;
            if (__builtin_mul_overflow(shape[i] - 1, stride[i], &span) ||
                __builtin_add_overflow(last, span, &last))
                return err_set("%s: tensor '%s': strides overflow", r->path, name);
        }
    if (numel > 0 && last >= s->numel)
        return err_set("%s: tensor '%s' reaches element %lld of a %lld-element storage", r->path, name,
                       (long long)last, (long long)s->numel);
    size_t es = pk_dtype_size(s->dtype), nb = (size_t)numel * es;
    uint64_t budget = (uint64_t)TF_MAX_EXPANSION * r->size + TF_EXPANSION_SLACK;
    if (nb > budget - r->out_bytes)
        return err_set("%s: tensor '%s' (%lld elements from a %lld-element storage) would bring the tensors "
                       "to more than %d times the file's size (a view repeating its storage?)",
                       r->path, name, (long long)numel, (long long)s->numel, TF_MAX_EXPANSION);
    r->out_bytes += nb;
    uint8_t *dst = malloc(nb ? nb : 1);
    if (own(r->out, dst))
        return -1;
    const uint8_t *src = s->data;
    int64_t contig = 1;
    int is_contig = 1;
    for (int i = nd - 1; i >= 0; i--) {
        if (shape[i] != 1 && stride[i] != contig)
            is_contig = 0;
        contig *= shape[i];
    }
    if (numel > 0 && is_contig)
        memcpy(dst, src + (size_t)t->u.tensor.offset * es, nb);
    else if (numel > 0) {
        int64_t idx[PK_MAX_DIMS] = {0}, at = t->u.tensor.offset;
        for (int64_t k = 0; k < numel; k++) {
            memcpy(dst + (size_t)k * es, src + (size_t)at * es, es);
            for (int i = nd - 1; i >= 0; i--) { /* odometer over the index, last axis fastest */
                at += stride[i];
                if (++idx[i] < shape[i])
                    break;
                at -= stride[i] * shape[i];
                idx[i] = 0;
            }
        }
    }
    return tf_set_add(r->out, name, dt, shape, nd, dst, nb, 0);
}

static const char *strip_module(const char *k)
{
    return strncmp(k, "module.", 7) ? k : k + 7;
}

static int meta_json(struct reader *r, const char *key, const pk_value *v)
{
    char *j = pk_to_json(v, META_JSON_MAX);
    if (!j)
        return err_wrap("%s: '%s'", r->path, key);
    int rc = tf_set_meta(r->out, key, j);
    free(j);
    return rc;
}

/* Generic: tensors under dotted names, other leaves as JSON metadata. */
static int flatten(struct reader *r, const char *prefix, const pk_value *v, int depth)
{
    if (depth > PK_MAX_DEPTH)
        return err_set("%s: '%s' is nested too deeply", r->path, prefix);
    if (v->type == PK_TENSOR)
        return materialise(r, prefix, v);
    if (v->type != PK_DICT)
        return meta_json(r, prefix, v);
    for (size_t i = 0; i < v->u.dict.n; i++) {
        const pk_value *k = v->u.dict.keys[i];
        char name[512];
        if (k->type == PK_STR)
            snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", strip_module(k->u.str.s));
        else if (k->type == PK_INT)
            snprintf(name, sizeof name, "%s%s%lld", prefix, *prefix ? "." : "", (long long)k->u.i);
        else
            return err_set("%s: '%s' has a %s key", r->path, prefix, pk_type_name(k->type));
        if (flatten(r, name, v->u.dict.vals[i], depth + 1))
            return -1;
    }
    return 0;
}

static int is_seq_params(const pk_value *p)
{
    if (!p || p->type != PK_LIST)
        return 0;
    for (size_t i = 0; i < p->u.seq.n; i++)
        if (p->u.seq.items[i]->type != PK_INT || p->u.seq.items[i]->u.i != (int64_t)i)
            return 0;
    return 1;
}

static int import_optimizer(struct reader *r, const char *key, const pk_value *v)
{
    const pk_value *state = pk_dict_get(v, "state"), *groups = pk_dict_get(v, "param_groups");
    char name[512];
    if (state && state->type != PK_DICT)
        return err_set("%s: %s.state is not a dict", r->path, key);
    for (size_t i = 0; state && i < state->u.dict.n; i++) {
        const pk_value *idx = state->u.dict.keys[i], *fields = state->u.dict.vals[i];
        if (idx->type != PK_INT || fields->type != PK_DICT)
            return err_set("%s: %s.state is not keyed by parameter index", r->path, key);
        for (size_t j = 0; j < fields->u.dict.n; j++) {
            const pk_value *f = fields->u.dict.keys[j], *x = fields->u.dict.vals[j];
            if (f->type != PK_STR)
                return err_set("%s: %s.state.%lld has a non-string key", r->path, key, (long long)idx->u.i);
            snprintf(name, sizeof name, "%s.state.%lld.%s", key, (long long)idx->u.i, f->u.str.s);
            if (!strcmp(f->u.str.s, "step") && (x->type == PK_INT || x->type == PK_FLOAT)) {
                float step = x->type == PK_INT ? (float)x->u.i : (float)x->u.f; /* torch >= 1.12 layout */
                if (tf_set_add(r->out, name, ST_F32, NULL, 0, &step, sizeof step, 1))
                    return -1;
            } else if (flatten(r, name, x, 3))
                return -1;
        }
    }
    snprintf(name, sizeof name, "%s.param_groups", key);
    if (groups && groups->type == PK_LIST && groups->u.seq.n == 1 &&
        groups->u.seq.items[0]->type == PK_DICT &&
        is_seq_params(pk_dict_get(groups->u.seq.items[0], "params"))) {
        /* the one group without "params" (recomputed on export) */
        const pk_value *g = groups->u.seq.items[0];
        pk_value copy = *g;
        pk_value *ks[64], *vs[64];
        copy.u.dict.keys = ks;
        copy.u.dict.vals = vs;
        copy.u.dict.n = 0;
        for (size_t i = 0; i < g->u.dict.n && copy.u.dict.n < 64; i++)
            if (g->u.dict.keys[i]->type != PK_STR || strcmp(g->u.dict.keys[i]->u.str.s, "params") != 0) {
                ks[copy.u.dict.n] = g->u.dict.keys[i];
                vs[copy.u.dict.n++] = g->u.dict.vals[i];
            }
        return meta_json(r, name, &copy);
    }
    return groups ? meta_json(r, name, groups) : 0;
}

static int import_root(struct reader *r)
{
    const pk_value *root = pk_root(r->doc);
    int train = 0;
    if (pk_is_tensor_dict(root)) {
        if (flatten(r, "", root, 0))
            return -1;
    } else if (root->type == PK_DICT) {
        int have_sched = 0;
        for (size_t i = 0; i < root->u.dict.n; i++) {
            const pk_value *k = root->u.dict.keys[i], *v = root->u.dict.vals[i], *le;
            if (k->type != PK_STR)
                return err_set("%s: top-level key of type %s", r->path, pk_type_name(k->type));
            const char *key = k->u.str.s;
            if (v->type == PK_DICT && pk_dict_get(v, "param_groups")) {
                train = 1;
                if (import_optimizer(r, key, v))
                    return -1;
            } else if (v->type == PK_DICT && (le = pk_dict_get(v, "last_epoch")) && !pk_is_tensor_dict(v)) {
                if (meta_json(r, key, v))
                    return -1;
                if (!have_sched && le->type == PK_INT) {
                    char num[32];
                    snprintf(num, sizeof num, "%lld", (long long)le->u.i);
                    have_sched = 1;
                    if (tf_set_meta(r->out, "sched_epoch", num))
                        return -1;
                }
            } else if (flatten(r, key, v, 1))
                return -1;
        }
    } else
        return err_set("%s: the checkpoint is a %s, not a dict", r->path, pk_type_name(root->type));
    if (tf_set_meta(r->out, "format", "aging-cyclegan") ||
        tf_set_meta(r->out, "format_version", FORMAT_VERSION) ||
        tf_set_meta(r->out, "kind", train ? "train" : "weights"))
        return -1;
    char src[600];
    const char *base = strrchr(r->path, '/');
    snprintf(src, sizeof src, "ckpt import %s", base ? base + 1 : r->path);
    return tf_set_meta(r->out, "source", src);
}

static int map_file(const char *path, const uint8_t **map, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set("%s:", path);
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return err_set("%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > TF_MAX_FILE) {
        close(fd);
        return err_set("%s: larger than %llu bytes", path, (unsigned long long)TF_MAX_FILE);
    }
    *size = (size_t)sb.st_size;
    *map = NULL;
    if (*size) {
        void *m = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            close(fd);
            return err_set("%s: mmap:", path);
        }
        *map = m;
    }
    close(fd);
    return 0;
}

int tf_set_from_pth(const char *path, tf_set *s)
{
    struct reader r = {.path = path, .out = s};
    tf_set_init(s);
    if (map_file(path, &r.map, &r.size))
        return -1;
    int rc;
    if (r.map && r.size >= 4 && !memcmp(r.map, "PK\3\4", 4))
        rc = open_zip(&r);
    else if (r.map && r.size >= 4 && !memcmp(r.map, "\x80\x02\x8a\x0a", 4))
        rc = open_legacy(&r);
    else
        rc = err_set("%s: not a torch.save file (neither zip nor legacy pickle)", path);
    if (!rc)
        rc = import_root(&r);
    pk_free(r.doc);
    free(r.st);
    strmap_free(&r.by_key);
    if (r.za)
        zip_discard(r.za);
    /* legacy tensors were copied out, so the map can go */
    if (r.map)
        munmap((void *)r.map, r.size);
    if (rc)
        tf_set_free(s);
    return rc;
}

int tf_set_from_st(const char *path, tf_set *s)
{
    tf_set_init(s);
    if (!(s->st = st_open(path)))
        return -1;
    for (int i = 0; i < st_count(s->st); i++) {
        const st_tensor *t = st_at(s->st, i);
        if (tf_set_add(s, t->name, t->dtype, t->shape, t->ndim, t->data, t->nbytes, 0)) {
            tf_set_free(s);
            return -1;
        }
    }
    for (int i = 0; i < st_meta_count(s->st); i++) {
        const char *k = st_meta_key(s->st, i);
        if (tf_set_meta(s, k, st_meta(s->st, k))) {
            tf_set_free(s);
            return -1;
        }
    }
    snprintf(s->format, sizeof s->format, "safetensors");
    return 0;
}

int tf_set_open(const char *path, tf_set *s)
{
    unsigned char head[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) {
        tf_set_init(s);
        return err_set("%s:", path);
    }
    size_t n = fread(head, 1, 4, f);
    fclose(f);
    if (n == 4 && (!memcmp(head, "PK\3\4", 4) || !memcmp(head, "\x80\x02\x8a\x0a", 4)))
        return tf_set_from_pth(path, s);
    return tf_set_from_st(path, s);
}

/* A safetensors writer referencing s's tensors; NULL with err_msg(). */
static st_writer *st_writer_of_(const tf_set *s)
{
    st_writer *w = st_writer_new();
    if (!w) {
        err_set("out of memory");
        return NULL;
    }
    int rc = 0;
    for (int i = 0; i < s->n && !rc; i++)
        rc = st_writer_add(w, s->t[i].name, s->t[i].dtype, s->t[i].shape, s->t[i].ndim, s->t[i].data);
    for (int i = 0; i < s->nmeta && !rc; i++)
        rc = st_writer_meta(w, s->meta_key[i], s->meta_val[i]);
    if (rc) {
        st_writer_free(w);
        return NULL;
    }
    return w;
}

int tf_set_save_st(const tf_set *s, const char *path)
{
    st_writer *w = st_writer_of_(s);
    int rc = w ? st_writer_save(w, path) : -1;
    st_writer_free(w);
    return rc;
}

int tf_set_st_bytes(const tf_set *s, uint8_t **data, size_t *n)
{
    st_writer *w = st_writer_of_(s);
    int rc = w ? st_writer_to_memory(w, data, n) : -1;
    st_writer_free(w);
    return rc;
}
