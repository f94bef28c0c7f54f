/*
 * npy: .npy parsing/formatting and .npz archives through libzip.  See npy.h.
 */
#include "npy.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

#include "base/err.h"
#include "zipmem.h"

#define NPY_MAX_MEMBER (1ull << 32) /* refuse larger members before allocating */

void npy_array_free(struct npy_array *a)
{
    if (!a)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

// ----------------------------------------------------------------------------
// header dict

/* The value text after 'key': in the dict h (NUL-terminated), or NULL. */
static const char *dict_value(const char *h, const char *key)
{
    char q1[40], q2[40];
    snprintf(q1, sizeof q1, "'%s'", key);
    snprintf(q2, sizeof q2, "\"%s\"", key);
    const char *p = strstr(h, q1);
    if (!p)
        p = strstr(h, q2);
    if (!p)
        return NULL;
    p += strlen(q1);
    while (isspace((unsigned char)*p))
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

static int parse_header(const char *h, char descr[16], int *fortran, int64_t *shape, int *ndim,
                        const char *label)
{
    const char *d = dict_value(h, "descr"), *f = dict_value(h, "fortran_order"), *s = dict_value(h, "shape");
    if (!d || !f || !s)
        return err_set("%s: .npy header without descr/fortran_order/shape", label);
    char q = *d;
    const char *e = (q == '\'' || q == '"') ? strchr(d + 1, q) : NULL;
    if (!e || e - d - 1 >= 16)
        return err_set("%s: bad descr in the .npy header", label);
    memcpy(descr, d + 1, (size_t)(e - d - 1));
    descr[e - d - 1] = 0;
    if (!strncmp(f, "True", 4))
        *fortran = 1;
    else if (!strncmp(f, "False", 5))
        *fortran = 0;
    else
        return err_set("%s: bad fortran_order in the .npy header", label);
    if (*s != '(')
        return err_set("%s: bad shape in the .npy header", label);
    s++;
    *ndim = 0;
    for (;;) {
        while (isspace((unsigned char)*s) || *s == ',')
            s++;
        if (*s == ')')
            break;
        if (!isdigit((unsigned char)*s) || *ndim >= NPY_MAX_DIMS)
            return err_set("%s: bad or too many dimensions in the .npy shape", label);
        char *end;
        long long v = strtoll(s, &end, 10);
        if (v < 0 || v > (1LL << 40))
            return err_set("%s: dimension %lld out of range", label, v);
        shape[(*ndim)++] = v;
        s = end;
        if (*s == 'L')
            s++; /* Python 2 longs */
    }
    return 0;
}

// ----------------------------------------------------------------------------
// .npy

int npy_parse(struct npy_array *out, const uint8_t *buf, size_t len, const char *label)
{
    memset(out, 0, sizeof *out);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return err_set("%s: not a .npy array (bad magic)", label);
    int major = buf[6];
    size_t hlen, off;
    if (major == 1) {
        hlen = buf[8] | (size_t)buf[9] << 8;
        off = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return err_set("%s: truncated .npy header", label);
        hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        off = 12;
    } else {
        return err_set("%s: .npy format version %d is not supported", label, major);
    }
    if (hlen > len - off || hlen > (1u << 20))
        return err_set("%s: truncated .npy header", label);
    char *h = malloc(hlen + 1);
    if (!h)
        return err_set("%s: out of memory", label);
    memcpy(h, buf + off, hlen);
    h[hlen] = 0;
    char descr[16];
    int fortran = 0;
    int rc = parse_header(h, descr, &fortran, out->shape, &out->ndim, label);
    free(h);
    if (rc)
        return -1;
    size_t esize = !strcmp(descr, "<f8") ? 8 : !strcmp(descr, "<f4") ? 4 : 0;
    if (!esize)
        return err_set("%s: .npy dtype '%s' is not supported (expected '<f8' or '<f4')", label, descr);
    out->numel = 1;
    for (int i = 0; i < out->ndim; i++)
        out->numel *= out->shape[i];
    off += hlen;
    if ((uint64_t)out->numel * esize != len - off)
        return err_set("%s: .npy data is %zu bytes, shape and dtype need %llu", label, len - off,
                       (unsigned long long)out->numel * esize);
    out->data = malloc((size_t)(out->numel ? out->numel : 1) * sizeof(double));
    if (!out->data)
        return err_set("%s: out of memory", label);
    const uint8_t *p = buf + off;
    for (int64_t i = 0; i < out->numel; i++) {
        if (esize == 8) {
            memcpy(&out->data[i], p + i * 8, 8);
        } else {
            float f;
            memcpy(&f, p + i * 4, 4);
            out->data[i] = f;
        }
    }
    if (fortran && out->ndim > 1) { /* reverse the axes into C order */
        double *c = malloc((size_t)(out->numel ? out->numel : 1) * sizeof(double));
        if (!c) {
            npy_array_free(out);
            return err_set("%s: out of memory", label);
        }
        int nd = out->ndim;
        int64_t idx[NPY_MAX_DIMS] = {0};
        for (int64_t i = 0; i < out->numel; i++) { /* i walks C order; idx is its index */
            int64_t fo = 0, stride = 1;
            for (int k = 0; k < nd; k++) {
                fo += idx[k] * stride;
                stride *= out->shape[k];
            }
            c[i] = out->data[fo];
            for (int k = nd - 1; k >= 0 && ++idx[k] == out->shape[k]; k--)
                idx[k] = 0;
        }
        free(out->data);
        out->data = c;
    }
    return 0;
}

int npy_format(uint8_t **out, size_t *len, const double *data, const int64_t *shape, int ndim)
{
    if (ndim < 0 || ndim > NPY_MAX_DIMS)
        return err_set("npy: %d dimensions", ndim);
    char sh[256] = "(";
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        size_t l = strlen(sh);
        snprintf(sh + l, sizeof sh - l, "%s%lld", i ? ", " : "", (long long)shape[i]);
        numel *= shape[i];
    }
    strcat(sh, ndim == 1 ? ",)" : ")");
    char h[400];
    int hl = snprintf(h, sizeof h, "{'descr': '<f8', 'fortran_order': False, 'shape': %s, }", sh);
    size_t total = 10 + (size_t)hl + 1, pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)hl + pad + 1, n = 10 + hlen + (size_t)numel * 8;
    uint8_t *b = malloc(n);
    if (!b)
        return err_set("npy: out of memory");
    static const uint8_t magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    memcpy(b, magic, sizeof magic);
    b[8] = (uint8_t)(hlen & 0xff);
    b[9] = (uint8_t)(hlen >> 8);
    memcpy(b + 10, h, (size_t)hl);
    memset(b + 10 + hl, ' ', pad);
    b[10 + hlen - 1] = '\n';
    memcpy(b + 10 + hlen, data, (size_t)numel * 8);
    *out = b;
    *len = n;
    return 0;
}

// ----------------------------------------------------------------------------
// .npz

/* Deflate cannot expand its input more than this (at best a 258-byte match
 * per two bits); numpy writes stored or deflated members only. */
#define DEFLATE_MAX_RATIO 1032

/* The size a member declares is allocated before it is read, so it must be
 * one its compressed bytes (within the file) can produce: otherwise a few
 * hundred bytes could ask for gigabytes. */
static int member_size_check_(const zip_stat_t *st, const char *path, const char *label)
{
    struct stat sb;
    if (!(st->valid & ZIP_STAT_COMP_SIZE) || !(st->valid & ZIP_STAT_COMP_METHOD) || stat(path, &sb) != 0)
        return err_set("%s: cannot size the member", label);
    if (st->comp_size > (uint64_t)sb.st_size)
        return err_set("%s: %llu compressed bytes in a %lld-byte archive", label,
                       (unsigned long long)st->comp_size, (long long)sb.st_size);
    if (st->comp_method != ZIP_CM_STORE && st->comp_method != ZIP_CM_DEFLATE)
        return err_set("%s: compression method %d (numpy writes stored or deflated members)", label,
                       (int)st->comp_method);
    uint64_t most = st->comp_size * (st->comp_method == ZIP_CM_STORE ? 1 : DEFLATE_MAX_RATIO);
    if (st->size > most)
        return err_set("%s: declares %llu bytes, more than its %llu compressed bytes can hold", label,
                       (unsigned long long)st->size, (unsigned long long)st->comp_size);
    return 0;
}

int npz_read(const char *path, const char *key, struct npy_array *out)
{
    memset(out, 0, sizeof *out);
    int zerr = 0;
    zip_t *za = zip_open(path, ZIP_RDONLY, &zerr);
    if (!za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        err_set("%s: not a readable .npz (zip) archive: %s", path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return -1;
    }
    char name[128], label[600];
    snprintf(name, sizeof name, "%s.npy", key);
    snprintf(label, sizeof label, "%s: %s", path, name);
    int rc = -1;
    uint8_t *buf = NULL;
    zip_file_t *zf = NULL;
    zip_int64_t idx = zip_name_locate(za, name, 0);
    zip_stat_t st;
    zip_stat_init(&st);
    if (idx < 0) {
        char have[256] = "";
        zip_int64_t ne = zip_get_num_entries(za, 0);
        for (zip_int64_t i = 0; i < ne && strlen(have) < 200; i++) {
            size_t l = strlen(have);
            snprintf(have + l, sizeof have - l, "%s%s", i ? ", " : "", zip_get_name(za, i, 0));
        }
        err_set("%s: no array '%s' (members: %s)", path, key, *have ? have : "none");
        goto out;
    }
    if (zip_stat_index(za, (zip_uint64_t)idx, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE) ||
        st.size > NPY_MAX_MEMBER) {
        err_set("%s: cannot size the member", label);
        goto out;
    }
    if (member_size_check_(&st, path, label))
        goto out;
    buf = malloc(st.size ? st.size : 1);
    zf = buf ? zip_fopen_index(za, (zip_uint64_t)idx, 0) : NULL;
    if (!zf || zip_fread(zf, buf, st.size) != (zip_int64_t)st.size) {
        err_set("%s: cannot read the member: %s", label,
                zf ? zip_error_strerror(zip_file_get_error(zf)) : zip_strerror(za));
        goto out;
    }
    rc = npy_parse(out, buf, st.size, label);
out:
    if (zf)
        zip_fclose(zf);
    free(buf);
    zip_discard(za);
    return rc;
}

/* Members dated 1980-01-02, not now: the same statistics give the same file. */
#define NPZ_MTIME 315705600

int npz_write(const char *path, const struct npz_entry *entries, int count)
{
    zip_source_t *mem;
    zip_t *za = zipmem_new(&mem, path);
    if (!za)
        return -1;
    uint8_t **bufs = calloc((size_t)count + 1, sizeof *bufs);
    int rc = bufs ? 0 : err_set("npz: out of memory");
    for (int i = 0; i < count && !rc; i++) {
        size_t len = 0;
        char name[128];
        snprintf(name, sizeof name, "%s.npy", entries[i].key);
        if (npy_format(&bufs[i], &len, entries[i].data, entries[i].shape, entries[i].ndim)) {
            rc = -1;
            break;
        }
        zip_source_t *src = zip_source_buffer(za, bufs[i], len, 0);
        zip_int64_t idx = src ? zip_file_add(za, name, src, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE) : -1;
        if (idx < 0) {
            zip_source_free(src);
            rc = err_set("%s: adding %s: %s", path, name, zip_strerror(za));
        } else if (zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0) != 0 ||
                   zip_file_set_mtime(za, (zip_uint64_t)idx, NPZ_MTIME, 0) != 0) {
            rc = err_set("%s: %s", path, zip_strerror(za));
        }
    }
    if (rc == 0)
        rc = zipmem_save(za, mem, path);
    else
        zipmem_discard(za, mem);
    for (int i = 0; bufs && i < count; i++)
        free(bufs[i]);
    free(bufs);
    return rc;
}
