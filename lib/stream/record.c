/*
 * record: decoding a msgpack map into named fields, editing them, and
 * packing them back.  Known scalar types become typed fields; every other
 * value stays a raw msgpack object so it round-trips untouched.
 */
#include "record.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/half.h"
#include "record-frame.h"

static void *xrealloc_(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        abort(); /* out of memory: nothing sensible left to do */
    return q;
}

static char *xstrndup_(const char *s, size_t n)
{
    char *d = xrealloc_(NULL, n + 1);
    if (n) /* an empty msgpack str has no pointer at all */
        memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static void field_release_(record_field *f)
{
    free(f->s);
    free(f->owned);
    free(f->ints);
    f->s = NULL;
    f->owned = NULL;
    f->ints = NULL;
    f->bin = NULL;
}

void record_init(record *r)
{
    memset(r, 0, sizeof *r);
}

void record_clear(record *r)
{
    for (int i = 0; i < r->n; i++) {
        field_release_(&r->fields[i]);
        free(r->fields[i].key);
    }
    free(r->fields);
    if (r->has_holder)
        msgpack_unpacked_destroy(&r->holder);
    free(r->backing);
    record_init(r);
}

const record_field *record_find(const record *r, const char *key)
{
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->fields[i].key, key) == 0)
            return &r->fields[i];
    return NULL;
}

/* The field named key, emptied for a new value, appended if absent. */
static record_field *slot_(record *r, const char *key)
{
    record_field *f = (record_field *)record_find(r, key);
    if (f) {
        field_release_(f);
        return f;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 16;
        r->fields = xrealloc_(r->fields, (size_t)r->cap * sizeof *r->fields);
    }
    f = &r->fields[r->n++];
    memset(f, 0, sizeof *f);
    f->key = xrealloc_(NULL, strlen(key) + 1);
    strcpy(f->key, key);
    return f;
}

/* An array whose items are all integers becomes REC_INTS. */
static bool ints_array_(msgpack_object o)
{
    if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size > 64)
        return false;
    for (uint32_t i = 0; i < o.via.array.size; i++) {
        msgpack_object_type t = o.via.array.ptr[i].type;
        if (t != MSGPACK_OBJECT_POSITIVE_INTEGER && t != MSGPACK_OBJECT_NEGATIVE_INTEGER)
            return false;
    }
    return true;
}

static void field_from_object_(record_field *f, msgpack_object v)
{
    switch (v.type) {
    case MSGPACK_OBJECT_NIL: f->type = REC_NIL; break;
    case MSGPACK_OBJECT_BOOLEAN:
        f->type = REC_BOOL;
        f->b = v.via.boolean;
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (v.via.u64 > INT64_MAX) {
            f->type = REC_RAW;
            f->raw = v;
        } else {
            f->type = REC_INT;
            f->i = (int64_t)v.via.u64;
        }
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        f->type = REC_INT;
        f->i = v.via.i64;
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        f->type = REC_FLOAT;
        f->f = v.via.f64;
        break;
    case MSGPACK_OBJECT_STR:
        f->type = REC_STR;
        f->s = xstrndup_(v.via.str.ptr, v.via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        f->type = REC_BIN;
        f->bin = (const uint8_t *)v.via.bin.ptr;
        f->len = v.via.bin.size;
        break;
    default:
        if (ints_array_(v)) {
            f->type = REC_INTS;
            f->nints = (int)v.via.array.size;
            f->ints = xrealloc_(NULL, (size_t)f->nints * sizeof *f->ints);
            for (int k = 0; k < f->nints; k++) {
                msgpack_object it = v.via.array.ptr[k];
                f->ints[k] = it.type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)it.via.u64 : it.via.i64;
            }
        } else {
            f->type = REC_RAW;
            f->raw = v;
        }
    }
}

static int key_cmp_(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted, duplicates sit side by side: n log n where a search per key
 * made a map of 100k keys cost minutes. */
static int check_unique_keys_(const record *r)
{
    char **keys = xrealloc_(NULL, (size_t)r->n * sizeof *keys);
    for (int i = 0; i < r->n; i++)
        keys[i] = r->fields[i].key;
    qsort(keys, (size_t)r->n, sizeof *keys, key_cmp_);
    int rc = 0;
    for (int i = 1; i < r->n && rc == 0; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0)
            rc = err_set("duplicate key '%s'", keys[i]);
    free(keys);
    return rc;
}

int record_take_unpacked(record *r, msgpack_unpacked *holder, void *backing)
{
    record_clear(r);
    r->holder = *holder;
    r->has_holder = true;
    r->backing = backing;
    msgpack_unpacked_init(holder); /* the record owns the zone now */
    msgpack_object o = r->holder.data;
    if (o.type != MSGPACK_OBJECT_MAP)
        return err_set("not a msgpack map (is this a record stream?)");
    if (o.via.map.size > RECORD_MAX_KEYS)
        return err_set("%u keys (a record has at most %d)", o.via.map.size, RECORD_MAX_KEYS);
    r->cap = (int)o.via.map.size;
    r->fields = xrealloc_(NULL, (size_t)r->cap * sizeof *r->fields);
    for (uint32_t i = 0; i < o.via.map.size; i++) {
        msgpack_object k = o.via.map.ptr[i].key;
        if (k.type != MSGPACK_OBJECT_STR)
            return err_set("a key is not a string");
        record_field *f = &r->fields[r->n++];
        memset(f, 0, sizeof *f);
        f->key = xstrndup_(k.via.str.ptr, k.via.str.size);
        field_from_object_(f, o.via.map.ptr[i].val);
    }
    return check_unique_keys_(r);
}

const char *record_get_str(const record *r, const char *key)
{
    const record_field *f = record_find(r, key);
    return f && f->type == REC_STR ? f->s : NULL;
}

const char *record_kind(const record *r)
{
    const char *k = record_get_str(r, "kind");
    return k ? k : "";
}

int64_t record_pairs_ahead(const record *r)
{
    const char *k = record_kind(r);
    int64_t pairs;
    if ((strcmp(k, "epoch") != 0 && strcmp(k, "split") != 0) || record_get_int(r, "pairs", &pairs) != 0 ||
        pairs < 0)
        return 0;
    return pairs;
}

int record_get_int(const record *r, const char *key, int64_t *out)
{
    const record_field *f = record_find(r, key);
    if (!f || f->type != REC_INT)
        return -1;
    *out = f->i;
    return 0;
}

int record_get_float(const record *r, const char *key, double *out)
{
    const record_field *f = record_find(r, key);
    if (!f || (f->type != REC_FLOAT && f->type != REC_INT))
        return -1;
    *out = f->type == REC_FLOAT ? f->f : (double)f->i;
    return 0;
}

int record_get_bin(const record *r, const char *key, const uint8_t **data, size_t *len)
{
    const record_field *f = record_find(r, key);
    if (!f || f->type != REC_BIN)
        return -1;
    *data = f->bin;
    *len = f->len;
    return 0;
}

int record_get_ints(const record *r, const char *key, const int64_t **v, int *n)
{
    const record_field *f = record_find(r, key);
    if (!f || f->type != REC_INTS)
        return -1;
    *v = f->ints;
    *n = f->nints;
    return 0;
}

void record_set_str(record *r, const char *key, const char *v)
{
    record_field *f = slot_(r, key);
    f->type = REC_STR;
    f->s = xstrndup_(v, strlen(v));
}

/* Well-formed UTF-8 (RFC 3629): no overlong forms, surrogates or code
 * points past U+10FFFF. */
static bool utf8_valid_(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t k = c < 0x80                 ? 0 /* continuation bytes that follow */
                   : c >= 0xC2 && c <= 0xDF ? 1
                   : c >= 0xE0 && c <= 0xEF ? 2
                   : c >= 0xF0 && c <= 0xF4 ? 3
                                            : 4; /* not a lead byte */
        if (k == 4 || n - i <= k)
            return false; /* not a lead byte, or cut short */
        unsigned lo = 0x80, hi = 0xBF;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
        else if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
        for (size_t j = 1; j <= k; j++, lo = 0x80, hi = 0xBF)
            if (p[i + j] < lo || p[i + j] > hi)
                return false;
        i += k + 1;
    }
    return true;
}

void record_set_text(record *r, const char *key, const char *v)
{
    size_t n = strlen(v);
    if (utf8_valid_((const unsigned char *)v, n)) {
        record_set_str(r, key, v);
        return;
    }
    record_set_bin_owned(r, key, (uint8_t *)xstrndup_(v, n), n);
}

void record_set_int(record *r, const char *key, int64_t v)
{
    record_field *f = slot_(r, key);
    f->type = REC_INT;
    f->i = v;
}

void record_set_float(record *r, const char *key, double v)
{
    record_field *f = slot_(r, key);
    f->type = REC_FLOAT;
    f->f = v;
}

void record_set_bool(record *r, const char *key, bool v)
{
    record_field *f = slot_(r, key);
    f->type = REC_BOOL;
    f->b = v;
}

void record_set_ints(record *r, const char *key, const int64_t *v, int n)
{
    record_field *f = slot_(r, key);
    f->type = REC_INTS;
    f->nints = n;
    f->ints = xrealloc_(NULL, (size_t)n * sizeof *v);
    if (n)
        memcpy(f->ints, v, (size_t)n * sizeof *v);
}

void record_set_bin_owned(record *r, const char *key, uint8_t *data, size_t len)
{
    record_field *f = slot_(r, key);
    f->type = REC_BIN;
    f->owned = data;
    f->bin = data;
    f->len = len;
}

void record_remove(record *r, const char *key)
{
    record_field *f = (record_field *)record_find(r, key);
    if (!f)
        return;
    field_release_(f);
    free(f->key);
    int i = (int)(f - r->fields);
    memmove(&r->fields[i], &r->fields[i + 1], (size_t)(r->n - i - 1) * sizeof *f);
    r->n--;
}

int record_pack(const record *r, msgpack_packer *pk)
{
    int rc = msgpack_pack_map(pk, (size_t)r->n);
    for (int i = 0; i < r->n && rc == 0; i++) {
        const record_field *f = &r->fields[i];
        size_t kl = strlen(f->key);
        rc |= msgpack_pack_str_with_body(pk, f->key, kl);
        switch (f->type) {
        case REC_NIL: rc |= msgpack_pack_nil(pk); break;
        case REC_BOOL: rc |= f->b ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
        case REC_INT: rc |= msgpack_pack_int64(pk, f->i); break;
        case REC_FLOAT: rc |= msgpack_pack_double(pk, f->f); break;
        case REC_STR: rc |= msgpack_pack_str_with_body(pk, f->s, strlen(f->s)); break;
        case REC_BIN: rc |= msgpack_pack_bin_with_body(pk, f->bin, f->len); break;
        case REC_INTS:
            rc |= msgpack_pack_array(pk, (size_t)f->nints);
            for (int k = 0; k < f->nints; k++)
                rc |= msgpack_pack_int64(pk, f->ints[k]);
            break;
        case REC_RAW: rc |= msgpack_pack_object(pk, f->raw); break;
        }
    }
    return rc ? -1 : 0;
}

static void json_string_(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

int record_write_json(const record *r, FILE *f)
{
    fputc('{', f);
    for (int i = 0; i < r->n; i++) {
        const record_field *x = &r->fields[i];
        if (i)
            fputs(", ", f);
        json_string_(f, x->key);
        fputs(": ", f);
        switch (x->type) {
        case REC_BOOL: fputs(x->b ? "true" : "false", f); break;
        case REC_INT: fprintf(f, "%lld", (long long)x->i); break;
        case REC_FLOAT:
            if (isfinite(x->f))
                fprintf(f, "%.9g", x->f);
            else
                fputs("null", f);
            break;
        case REC_STR: json_string_(f, x->s); break;
        case REC_INTS:
            fputc('[', f);
            for (int k = 0; k < x->nints; k++)
                fprintf(f, "%s%lld", k ? ", " : "", (long long)x->ints[k]);
            fputc(']', f);
            break;
        default: fputs("null", f);
        }
    }
    fputs("}\n", f);
    return ferror(f) ? err_set("writing JSON failed:") : 0;
}

/* ---- tensor records ------------------------------------------------------ */

static const char *const dtype_names[] = {"u8", "f16", "bf16", "f32"};

const char *dtype_name(dtype d)
{
    return dtype_names[d];
}

int dtype_parse(const char *s, dtype *out)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, dtype_names[i]) == 0) {
            *out = (dtype)i;
            return 0;
        }
    return -1;
}

size_t dtype_size(dtype d)
{
    return d == DTYPE_U8 ? 1 : d == DTYPE_F32 ? 4 : 2;
}

int record_tensor_view(const record *r, tensor_view *v)
{
    const char *ds = record_get_str(r, "dtype");
    if (!ds)
        return err_set("tensor record without a string 'dtype'");
    if (dtype_parse(ds, &v->dt) != 0)
        return err_set("unknown dtype '%s' (expected u8, f16, bf16 or f32)", ds);
    const int64_t *shape;
    int nd;
    if (record_get_ints(r, "shape", &shape, &nd) != 0)
        return err_set("tensor record without an integer 'shape'");
    if (nd != 3 || shape[0] <= 0 || shape[1] <= 0 || shape[2] <= 0 || shape[0] > 4096 || shape[1] > 65536 ||
        shape[2] > 65536)
        return err_set("shape must be [C,H,W] with positive sizes, got %d dimensions", nd);
    size_t len;
    if (record_get_bin(r, "data", &v->data, &len) != 0)
        return err_set("tensor record without binary 'data'");
    v->c = shape[0];
    v->h = shape[1];
    v->w = shape[2];
    size_t want = (size_t)(v->c * v->h * v->w) * dtype_size(v->dt);
    if (len != want)
        return err_set("data holds %zu bytes but shape [%lld,%lld,%lld] of %s needs %zu", len,
                       (long long)v->c, (long long)v->h, (long long)v->w, ds, want);
    return 0;
}

void tensor_view_to_f32(const tensor_view *v, float *out)
{
    size_t n = (size_t)(v->c * v->h * v->w);
    switch (v->dt) {
    case DTYPE_U8:
        for (size_t i = 0; i < n; i++)
            out[i] = ((float)v->data[i] / 255.0f - 0.5f) / 0.5f;
        break;
    case DTYPE_F32: memcpy(out, v->data, n * 4); break;
    case DTYPE_F16:
    case DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = (uint16_t)(v->data[2 * i] | (v->data[2 * i + 1] << 8));
            out[i] = v->dt == DTYPE_F16 ? half_to_f32(h) : bf16_to_f32(h);
        }
        break;
    }
}

void record_set_tensor_f32(record *r, const float *chw, int64_t c, int64_t h, int64_t w, dtype dt)
{
    size_t n = (size_t)(c * h * w);
    uint8_t *data = xrealloc_(NULL, n * dtype_size(dt));
    switch (dt) {
    case DTYPE_U8:
        for (size_t i = 0; i < n; i++) {
            float x = chw[i] < -1.0f ? -1.0f : chw[i] > 1.0f ? 1.0f : chw[i];
            float y = (x + 1.0f) * 0.5f * 255.0f + 0.5f;
            data[i] = (uint8_t)(y > 255.0f ? 255.0f : y);
        }
        break;
    case DTYPE_F32: memcpy(data, chw, n * 4); break;
    case DTYPE_F16:
    case DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t v = dt == DTYPE_F16 ? half_from_f32(chw[i]) : bf16_from_f32(chw[i]);
            data[2 * i] = (uint8_t)(v & 0xff);
            data[2 * i + 1] = (uint8_t)(v >> 8);
        }
        break;
    }
    int64_t shape[3] = {c, h, w};
    record_set_str(r, "kind", "tensor");
    record_set_str(r, "dtype", dtype_name(dt));
    record_set_ints(r, "shape", shape, 3);
    record_set_bin_owned(r, "data", data, n * dtype_size(dt));
}
