/*
 * safetensors: the reader validates a whole file held in one owned buffer
 * (names and metadata strings in a second slab); the writer is
 * safetensors-write.c.  Layout and rules: lib/format/safetensors.h.
 */
#include "safetensors.h"

#include "base/err.h"
#include "image/image-probe.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host (the file data is little-endian)"
#endif

// ----------------------------------------------------------------------------
// dtypes

static const struct {
    const char *name;
    size_t size;
} dtypes_[ST_DTYPE_COUNT] = {
    [ST_BOOL] = {"BOOL", 1},
    [ST_U8] = {"U8", 1},
    [ST_I8] = {"I8", 1},
    [ST_F8_E5M2] = {"F8_E5M2", 1},
    [ST_F8_E4M3] = {"F8_E4M3", 1},
    [ST_F8_E8M0] = {"F8_E8M0", 1},
    [ST_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 1},
    [ST_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 1},
    [ST_I16] = {"I16", 2},
    [ST_U16] = {"U16", 2},
    [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2},
    [ST_I32] = {"I32", 4},
    [ST_U32] = {"U32", 4},
    [ST_F32] = {"F32", 4},
    [ST_C64] = {"C64", 8},
    [ST_F64] = {"F64", 8},
    [ST_I64] = {"I64", 8},
    [ST_U64] = {"U64", 8},
};

const char *st_dtype_name(st_dtype dtype)
{
    return (unsigned)dtype < ST_DTYPE_COUNT ? dtypes_[dtype].name : "?";
}

size_t st_dtype_size(st_dtype dtype)
{
    return (unsigned)dtype < ST_DTYPE_COUNT ? dtypes_[dtype].size : 0;
}

static int dtype_parse_(const char *s, st_dtype *out)
{
    for (int i = 0; i < ST_DTYPE_COUNT; i++)
        if (strcmp(s, dtypes_[i].name) == 0) {
            *out = (st_dtype)i;
            return 0;
        }
    return -1;
}

/* "[32,3,7,7]" into buf (truncated with "..." if it does not fit). */
static const char *shape_str_(char *buf, size_t n, const int64_t *shape, int ndim)
{
    size_t used = 0;
    buf[0] = 0;
    used += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%" PRId64, i ? "," : "", shape[i]);
    if (used < n)
        snprintf(buf + used, n - used, "]");
    if (used >= n - 1 && n > 4)
        strcpy(buf + n - 4, "...");
    return buf;
}

// ----------------------------------------------------------------------------
// reading

struct st_file {
    char *path;    /* label for messages */
    uint8_t *buf;  /* the file's bytes; tensor data points in here */
    char *strings; /* slab: tensor names, metadata keys and values */
    st_tensor *t;  /* n tensors in data-area order */
    int *by_name;  /* indices of t sorted by name, for st_get */
    int n;
    const char **meta; /* nmeta (key, value) pairs: meta[2i], meta[2i+1] */
    int *meta_by_key;  /* indices of the pairs sorted by key, for st_meta */
    int nmeta;
};

void st_free(st_file *f)
{
    if (!f)
        return;
    free(f->path);
    free(f->buf);
    free(f->strings);
    free(f->t);
    free(f->by_name);
    free(f->meta);
    free(f->meta_by_key);
    free(f);
}

int st_count(const st_file *f)
{
    return f->n;
}

const st_tensor *st_at(const st_file *f, int i)
{
    return i >= 0 && i < f->n ? &f->t[i] : NULL;
}

int st_meta_count(const st_file *f)
{
    return f->nmeta;
}

const char *st_meta_key(const st_file *f, int i)
{
    return i >= 0 && i < f->nmeta ? f->meta[2 * i] : NULL;
}

const char *st_meta(const st_file *f, const char *key)
{
    int lo = 0, hi = f->nmeta - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, k = f->meta_by_key[mid];
        int c = strcmp(key, f->meta[2 * k]);
        if (c == 0)
            return f->meta[2 * k + 1];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* A JSON number that is an integer in [0, 2^53]; -1 if negative, -2 if not
 * an integer (or out of range). */
static int json_uint_(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j))
        return -2;
    double d = j->valuedouble;
    if (!isfinite(d) || d != floor(d))
        return -2;
    if (d < 0)
        return -1;
    if (d > ST_MAX_INT)
        return -2;
    *out = (uint64_t)d;
    return 0;
}

/* Tensor order for the tiling check: by begin, then end (so an empty tensor
 * sitting where another starts comes first). */
static int cmp_offset_(const void *a, const void *b)
{
    const st_tensor *x = a, *y = b;
    const uint8_t *xa = x->data, *ya = y->data;
    if (xa != ya)
        return xa < ya ? -1 : 1;
    return (x->nbytes > y->nbytes) - (x->nbytes < y->nbytes);
}

/* qsort has no context argument: by_name sorting goes through this. */
static _Thread_local const st_tensor *sort_base_;
static int cmp_name_(const void *a, const void *b)
{
    return strcmp(sort_base_[*(const int *)a].name, sort_base_[*(const int *)b].name);
}

/* The same for metadata pairs (keys at even places). */
static _Thread_local const char *const *meta_base_;
static int cmp_key_(const void *a, const void *b)
{
    return strcmp(meta_base_[2 * *(const int *)a], meta_base_[2 * *(const int *)b]);
}

/* Parse one header entry into t (name already set).  base is the start of
 * the data area, dlen its size. */
static int parse_entry_(const char *path, const cJSON *e, st_tensor *t, const uint8_t *base, uint64_t dlen)
{
    const char *nm = t->name;
    if (!cJSON_IsObject(e))
        return err_set("%s: tensor '%s': entry is not an object", path, nm);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(jd))
        return err_set("%s: tensor '%s': no \"dtype\" string", path, nm);
    if (!cJSON_IsArray(js))
        return err_set("%s: tensor '%s': no \"shape\" array", path, nm);
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return err_set("%s: tensor '%s': no \"data_offsets\" [begin, end] pair", path, nm);

    if (dtype_parse_(jd->valuestring, &t->dtype)) {
        const char *ds = jd->valuestring;
        if (strcmp(ds, "F4") == 0 || strncmp(ds, "F6_", 3) == 0)
            return err_set("%s: tensor '%s': sub-byte dtype '%s' is not supported", path, nm, ds);
        return err_set("%s: tensor '%s': unknown dtype '%.40s'", path, nm, ds);
    }

    int ndim = cJSON_GetArraySize(js);
    if (ndim > ST_MAX_DIMS)
        return err_set("%s: tensor '%s': %d dimensions, at most %d are supported", path, nm, ndim,
                       ST_MAX_DIMS);
    t->ndim = ndim;
    uint64_t numel = 1;
    int overflow = 0, i = 0;
    for (const cJSON *d = js->child; d; d = d->next, i++) {
        uint64_t v = 0;
        int rc = json_uint_(d, &v);
        if (rc == -1)
            return err_set("%s: tensor '%s': negative dimension %g in shape", path, nm, d->valuedouble);
        if (rc)
            return err_set("%s: tensor '%s': shape entry %d is not a non-negative integer", path, nm, i);
        t->shape[i] = (int64_t)v;
        if (v && numel > UINT64_MAX / v)
            overflow = 1;
        numel *= v;
    }
    size_t esize = dtypes_[t->dtype].size;
    char sbuf[200];
    uint64_t begin = 0, end = 0;
    if (json_uint_(jo->child, &begin) || json_uint_(jo->child->next, &end))
        return err_set("%s: tensor '%s': data_offsets are not non-negative integers", path, nm);
    if (begin > end)
        return err_set("%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] end before they "
                       "begin",
                       path, nm, begin, end);
    if (end > dlen)
        return err_set("%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] run past the end "
                       "of the data area (%" PRIu64 " bytes; file truncated?)",
                       path, nm, begin, end, dlen);
    if (overflow || numel > UINT64_MAX / esize)
        return err_set("%s: tensor '%s': shape %s is too large", path, nm,
                       shape_str_(sbuf, sizeof sbuf, t->shape, ndim));
    if (end - begin != numel * esize)
        return err_set("%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] do not match "
                       "shape %s of %s (%" PRIu64 " bytes)",
                       path, nm, begin, end, shape_str_(sbuf, sizeof sbuf, t->shape, ndim),
                       dtypes_[t->dtype].name, numel * esize);
    t->numel = (int64_t)numel;
    t->data = base + begin;
    t->nbytes = (size_t)(end - begin);
    return 0;
}

/* The tensors must tile [0, dlen) exactly.  Sorts f->t into data order. */
static int check_tiling_(const char *path, st_file *f, const uint8_t *base, uint64_t dlen)
{
    qsort(f->t, (size_t)f->n, sizeof *f->t, cmp_offset_);
    uint64_t at = 0;
    const char *prev = NULL;
    for (int i = 0; i < f->n; i++) {
        const st_tensor *t = &f->t[i];
        uint64_t b = (uint64_t)((const uint8_t *)t->data - base), e = b + t->nbytes;
        if (b < at)
            return err_set("%s: tensors '%s' and '%s' overlap (at bytes [%" PRIu64 ", %" PRIu64
                           ") of the data area)",
                           path, prev, t->name, b, at < e ? at : e);
        if (b > at) {
            if (!prev)
                return err_set("%s: %" PRIu64 " unused bytes at the start of the data area, "
                               "before tensor '%s'",
                               path, b, t->name);
            return err_set("%s: gap of %" PRIu64 " bytes in the data area between tensors '%s' "
                           "(ends at %" PRIu64 ") and '%s' (starts at %" PRIu64 ")",
                           path, b - at, prev, at, t->name, b);
        }
        at = e;
        prev = t->name;
    }
    if (at != dlen) {
        if (!prev)
            return err_set("%s: no tensors, but %" PRIu64 " bytes of data follow the header", path, dlen);
        return err_set("%s: %" PRIu64 " bytes of data after the last tensor '%s' (it ends at "
                       "%" PRIu64 ", the data area is %" PRIu64 " bytes)",
                       path, dlen - at, prev, at, dlen);
    }
    return 0;
}

/* The tensor-count check, on the header's text before cJSON makes a node
 * of every value (a million tiny entries cost 830 MB as nodes): members of
 * the top object (tensors and __metadata__) and commas at any depth (every
 * value but the first of each array or object), outside strings.  A tensor
 * entry has 11 at most (3 fields, 8 dimensions, 2 offsets, its own). */
static int count_check_(const char *path, const char *h, size_t n)
{
    size_t top = 0, commas = 0;
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (c == '"') {
            while (++i < n && h[i] != '"')
                i += h[i] == '\\';
            continue;
        }
        depth += (c == '{' || c == '[') - (c == '}' || c == ']');
        commas += c == ',';
        top += c == ',' && depth == 1;
    }
    if (top > ST_MAX_TENSORS) /* commas: one fewer than the members, one of which may be __metadata__ */
        return err_set("%s: more than %d tensors (a training checkpoint has about 1000)", path,
                       ST_MAX_TENSORS);
    if (commas > (size_t)ST_MAX_TENSORS * 16 + ST_MAX_META * 2)
        return err_set("%s: header holds more than %d values (%d tensors and %d metadata keys at most)", path,
                       ST_MAX_TENSORS * 16 + ST_MAX_META * 2, ST_MAX_TENSORS, ST_MAX_META);
    return 0;
}

/* What a file that is no safetensors file looks like, for the message:
 * "a 200x200 JPEG image", "text", ... or NULL when it is not recognised. */
static const char *looks_like_(const uint8_t *b, uint64_t len, char *buf, size_t size)
{
    static const struct {
        const char *magic;
        size_t n;
        const char *what;
    } known[] = {{"GIF8", 4, "a GIF image"},
                 {"%PDF", 4, "a PDF document"},
                 {"\x1f\x8b", 2, "a gzip archive"},
                 {"\x7f"
                  "ELF",
                  4, "an ELF executable"},
                 {"RIFF", 4, "a RIFF file (WebP, WAV, AVI)"},
                 {"BM", 2, "a BMP image"}};
    int w, h;
    const char *fmt;
    if (image_probe(b, len, &w, &h, &fmt) == 0) {
        snprintf(buf, size, "a %dx%d %s image", w, h, fmt);
        return buf;
    }
    if ((len >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) || (len >= 4 && !memcmp(b, "\x89PNG", 4)))
        return b[0] == 0xff ? "a JPEG image (its header cut short)" : "a PNG image (its header cut short)";
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (len >= known[i].n && !memcmp(b, known[i].magic, known[i].n))
            return known[i].what;
    /* text: the first bytes are printable ASCII, white space or UTF-8 */
    size_t n = len < 512 ? (size_t)len : 512;
    for (size_t i = 0; i < n; i++)
        if (b[i] < 0x20 && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' && b[i] != '\f')
            return NULL;
    return b[0] == '{' || b[0] == '[' ? "text (JSON?)" : "text";
}

/* Validate buf[0..len) (owned by f on entry) and fill f.  -1 on error. */
static int parse_(st_file *f, uint64_t len)
{
    const char *path = f->path;
    const uint8_t *b = f->buf;
    if (len == 0)
        return err_set("%s: empty file (0 bytes), not a safetensors file", path);
    if (len >= 4 && memcmp(b, "PK\3\4", 4) == 0)
        return err_set("%s: this is a PyTorch .pth (zip) checkpoint, not safetensors; "
                       "convert it with the ckpt tool",
                       path);
    if (len >= 2 && b[0] == 0x80 && b[1] == 0x02)
        return err_set("%s: this is a legacy PyTorch .pth checkpoint, not safetensors; "
                       "convert it with the ckpt tool",
                       path);
    if (len < 8)
        return err_set("%s: file is %" PRIu64 " bytes, too short for the 8-byte header length "
                       "(truncated?)",
                       path, len);
    uint64_t hlen = 0;
    memcpy(&hlen, b, 8); /* little-endian host */
    /* a file that fails the first checks below and looks like something
     * else (a face picture passed as --ckpt) is named for what it is */
    char what_buf[64];
    const char *what = hlen > ST_MAX_HEADER || hlen > len - 8 || hlen < 2 || b[8] != '{'
                           ? looks_like_(b, len, what_buf, sizeof what_buf)
                           : NULL;
    if (what)
        return err_set("%s: not a checkpoint: this is %s, not a safetensors file", path, what);
    if (hlen > ST_MAX_HEADER)
        return err_set("%s: header length %" PRIu64 " is over the 100 MB limit "
                       "(not a safetensors file?)",
                       path, hlen);
    if (hlen > len - 8)
        return err_set("%s: header length %" PRIu64 " runs past the end of the %" PRIu64
                       "-byte file (truncated?)",
                       path, hlen, len);
    if (hlen < 2 || b[8] != '{')
        return err_set("%s: header does not start with '{' (not a safetensors file?)", path);
    if (memchr(b + 8, 0, hlen))
        return err_set("%s: header contains a NUL byte (not a safetensors file?)", path);
    if (count_check_(path, (const char *)b + 8, hlen))
        return -1;

    /* cJSON wants a NUL-terminated string: copy the header out. */
    char *hdr = malloc(hlen + 1);
    if (!hdr)
        return err_set("%s: out of memory for a %" PRIu64 "-byte header", path, hlen);
    memcpy(hdr, b + 8, hlen);
    hdr[hlen] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(hdr, &end, 0);
    int rc = -1;
    if (!root) {
        size_t at = end ? (size_t)(end - hdr) : 0;
        err_set("%s: header is not valid JSON (error near byte %zu of %" PRIu64 ")", path, at, hlen);
        goto out;
    }
    for (const char *p = end; *p; p++)
        if (!strchr(" \t\r\n", *p)) {
            err_set("%s: header has bytes after its JSON object (at byte %zu)", path, (size_t)(p - hdr));
            goto out;
        }
    if (!cJSON_IsObject(root)) {
        err_set("%s: header is not a JSON object", path);
        goto out;
    }

    /* Count entries and string bytes so names and metadata go in one slab. */
    const cJSON *meta = NULL;
    size_t sbytes = 0;
    int n = 0, nmeta = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (meta) {
                err_set("%s: header has two \"__metadata__\" entries", path);
                goto out;
            }
            if (!cJSON_IsObject(e)) {
                err_set("%s: \"__metadata__\" is not an object", path);
                goto out;
            }
            meta = e;
            for (const cJSON *m = e->child; m; m = m->next) {
                if (!cJSON_IsString(m)) {
                    err_set("%s: __metadata__ value for '%s' is not a string", path, m->string);
                    goto out;
                }
                if (++nmeta > ST_MAX_META) {
                    err_set("%s: __metadata__ has more than %d keys (a checkpoint has tens)", path,
                            ST_MAX_META);
                    goto out;
                }
                sbytes += strlen(m->string) + strlen(m->valuestring) + 2;
            }
        } else {
            if (++n > ST_MAX_TENSORS) {
                err_set("%s: more than %d tensors (a training checkpoint has about 1000)", path,
                        ST_MAX_TENSORS);
                goto out;
            }
            sbytes += strlen(e->string) + 1;
        }
    }

    f->strings = malloc(sbytes + 1);
    f->t = calloc((size_t)n + 1, sizeof *f->t);
    f->by_name = malloc(((size_t)n + 1) * sizeof *f->by_name);
    f->meta = malloc(((size_t)nmeta + 1) * 2 * sizeof *f->meta);
    f->meta_by_key = malloc(((size_t)nmeta + 1) * sizeof *f->meta_by_key);
    if (!f->strings || !f->t || !f->by_name || !f->meta || !f->meta_by_key) {
        err_set("%s: out of memory for the header of %d tensors", path, n);
        goto out;
    }
    char *s = f->strings;
    uint64_t dlen = len - 8 - hlen;
    /* Data starts at 8+hlen; if that is not 8-byte aligned (a writer that
     * does not pad), the data is moved to the start of the buffer below,
     * so compute offsets against its final place. */
    uint8_t *base = f->buf + 8 + hlen;
    int move = ((8 + hlen) % 8) != 0;
    if (move)
        base = f->buf;
    int i = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (e == meta) {
            for (const cJSON *m = e->child; m; m = m->next) {
                f->meta[2 * f->nmeta] = strcpy(s, m->string);
                s += strlen(s) + 1;
                f->meta[2 * f->nmeta + 1] = strcpy(s, m->valuestring);
                s += strlen(s) + 1;
                f->meta_by_key[f->nmeta] = f->nmeta;
                f->nmeta++;
            }
            continue;
        }
        st_tensor *t = &f->t[i];
        t->name = strcpy(s, e->string);
        s += strlen(s) + 1;
        if (parse_entry_(path, e, t, base, dlen))
            goto out;
        f->by_name[i] = i;
        i++;
    }
    f->n = n;

    /* Duplicate keys and names: cJSON keeps both entries of an object. */
    meta_base_ = f->meta;
    qsort(f->meta_by_key, (size_t)f->nmeta, sizeof *f->meta_by_key, cmp_key_);
    for (int k = 1; k < f->nmeta; k++)
        if (strcmp(f->meta[2 * f->meta_by_key[k]], f->meta[2 * f->meta_by_key[k - 1]]) == 0) {
            err_set("%s: __metadata__ key '%s' appears twice", path, f->meta[2 * f->meta_by_key[k]]);
            goto out;
        }
    sort_base_ = f->t;
    qsort(f->by_name, (size_t)n, sizeof *f->by_name, cmp_name_);
    for (int k = 1; k < n; k++)
        if (strcmp(f->t[f->by_name[k]].name, f->t[f->by_name[k - 1]].name) == 0) {
            err_set("%s: tensor name '%s' appears twice", path, f->t[f->by_name[k]].name);
            goto out;
        }
    if (check_tiling_(path, f, base, dlen))
        goto out;
    /* Tiling reordered t: rebuild the name index. */
    for (int k = 0; k < n; k++)
        f->by_name[k] = k;
    sort_base_ = f->t;
    qsort(f->by_name, (size_t)n, sizeof *f->by_name, cmp_name_);
    if (move)
        memmove(f->buf, f->buf + 8 + hlen, dlen);
    rc = 0;
out:
    cJSON_Delete(root);
    free(hdr);
    return rc;
}

static st_file *file_new_(const char *label)
{
    st_file *f = calloc(1, sizeof *f);
    if (f)
        f->path = strdup(label ? label : "safetensors");
    if (!f || !f->path) {
        free(f);
        err_set("out of memory");
        return NULL;
    }
    return f;
}

st_file *st_parse(const void *buf, size_t len, const char *label)
{
    st_file *f = file_new_(label);
    if (!f)
        return NULL;
    f->buf = malloc(len ? len : 1);
    if (!f->buf) {
        err_set("%s: out of memory for %zu bytes", f->path, len);
        st_free(f);
        return NULL;
    }
    if (len)
        memcpy(f->buf, buf, len);
    if (parse_(f, len)) {
        st_free(f);
        return NULL;
    }
    return f;
}

st_file *st_open(const char *path)
{
    st_file *f = file_new_(path);
    if (!f)
        return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_set("%s:", path);
        st_free(f);
        return NULL;
    }
    /* Read to EOF (works for pipes too); size the buffer from fstat. */
    struct stat sb;
    size_t cap =
        (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0) ? (size_t)sb.st_size + 1 : 1 << 16;
    size_t len = 0;
    f->buf = malloc(cap);
    for (;;) {
        if (!f->buf) {
            err_set("%s: out of memory reading the file", path);
            goto fail;
        }
        if (len == cap) {
            uint8_t *nb = realloc(f->buf, cap * 2);
            if (!nb) {
                err_set("%s: out of memory reading the file", path);
                goto fail;
            }
            f->buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, f->buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            err_set("%s: read:", path);
            goto fail;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    fd = -1;
    if (parse_(f, len))
        goto fail;
    return f;
fail:
    if (fd >= 0)
        close(fd);
    st_free(f);
    return NULL;
}

const st_tensor *st_by_name(const st_file *f, int i)
{
    return i >= 0 && i < f->n ? &f->t[f->by_name[i]] : NULL;
}

int st_prefix_range(const st_file *f, const char *prefix, int *first)
{
    /* names with the prefix are contiguous in name order: find the first
     * name >= prefix, then count */
    size_t pl = strlen(prefix);
    int lo = 0, hi = f->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (strcmp(f->t[f->by_name[mid]].name, prefix) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    int end = lo;
    while (end < f->n && strncmp(f->t[f->by_name[end]].name, prefix, pl) == 0)
        end++;
    if (first)
        *first = lo;
    return end - lo;
}

const char *st_path(const st_file *f)
{
    return f->path;
}

const st_tensor *st_get(const st_file *f, const char *name)
{
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const st_tensor *t = &f->t[f->by_name[mid]];
        int c = strcmp(name, t->name);
        if (c == 0)
            return t;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    err_set("%s: missing tensor '%s'", f->path, name);
    return NULL;
}

/* Existence and exact shape; returns the tensor or NULL with a message. */
static const st_tensor *get_shaped_(const st_file *f, const char *name, const int64_t *shape, int ndim)
{
    const st_tensor *t = st_get(f, name);
    if (!t)
        return NULL;
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        char a[200], b[200];
        err_set("%s: tensor '%s' has shape %s but the model expects %s", f->path, name,
                shape_str_(a, sizeof a, t->shape, t->ndim),
                shape_str_(b, sizeof b, shape, ndim < 0 ? 0 : ndim));
        return NULL;
    }
    return t;
}

int st_read(const st_file *f, const char *name, st_dtype dtype, void *dst, const int64_t *shape, int ndim)
{
    const st_tensor *t = get_shaped_(f, name, shape, ndim);
    if (!t)
        return -1;
    if (t->dtype != dtype)
        return err_set("%s: tensor '%s' is %s but %s is expected", f->path, name, st_dtype_name(t->dtype),
                       st_dtype_name(dtype));
    if (t->nbytes)
        memcpy(dst, t->data, t->nbytes);
    return 0;
}

/* IEEE half -> float, exact (subnormals, inf, NaN payload kept). */
static float f16_to_f32_(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man) { /* subnormal: normalise */
        int e = -1;
        do {
            e++;
            man <<= 1;
        } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    } else {
        bits = sign;
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

int st_read_f32(const st_file *f, const char *name, float *dst, const int64_t *shape, int ndim)
{
    const st_tensor *t = get_shaped_(f, name, shape, ndim);
    if (!t)
        return -1;
    const uint8_t *p = t->data;
    int64_t n = t->numel;
    switch (t->dtype) {
    case ST_F32:
        if (t->nbytes)
            memcpy(dst, p, t->nbytes);
        return 0;
    case ST_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = f16_to_f32_(h);
        }
        return 0;
    case ST_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return 0;
    case ST_F64:
        for (int64_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            if (d > FLT_MAX || d < -FLT_MAX) /* out of range: inf, not UB */
                dst[i] = d > 0 ? INFINITY : -INFINITY;
            else
                dst[i] = (float)d;
        }
        return 0;
    default:
        return err_set("%s: tensor '%s' is %s, which cannot be read as F32", f->path, name,
                       st_dtype_name(t->dtype));
    }
}
