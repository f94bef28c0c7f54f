/*
 * pickle-json: pk_to_json of pickle.h, a parsed pickle value written as
 * compact JSON the way Python's json writes it (tuples as arrays, dict keys
 * as strings, inf/nan as Infinity/NaN), bounded in depth and length.  The
 * reader is pickle.c, the writer pickle-write.c.
 */
#include "pickle.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

struct sbuf {
    char *s;
    size_t len, cap, max;
    int failed;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->max) {
        b->failed = err_set("value too large to write as JSON");
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *more = realloc(b->s, cap);
        if (!more) {
            b->failed = err_set("out of memory");
            return;
        }
        b->s = more;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_cstr(struct sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_json_str(struct sbuf *b, const char *s, size_t n)
{
    sb_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            sb_put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_put(b, esc, 6);
        } else
            sb_put(b, (const char *)&s[i], 1);
    }
    sb_put(b, "\"", 1);
}

static void sb_num(struct sbuf *b, double f)
{
    char t[40];
    if (isnan(f))
        sb_cstr(b, "NaN");
    else if (isinf(f))
        sb_cstr(b, f > 0 ? "Infinity" : "-Infinity");
    else {
        for (int prec = 15; prec <= 17; prec++) { /* shortest text that reads back exactly */
            snprintf(t, sizeof t, "%.*g", prec, f);
            if (strtod(t, NULL) == f)
                break;
        }
        /* keep it a float for readers that care: 1 -> 1.0 */
        if (!strpbrk(t, ".eE"))
            strcat(t, ".0");
        sb_cstr(b, t);
    }
}

static void to_json(struct sbuf *b, const pk_value *v, int depth, bool as_key)
{
    char t[40];
    if (b->failed)
        return;
    if (depth > PK_MAX_DEPTH) {
        b->failed = err_set("value nested deeper than %d levels", PK_MAX_DEPTH);
        return;
    }
    if (as_key && v->type != PK_STR) { /* json.dumps turns int/float/bool/None keys to strings */
        struct sbuf kb = {.max = 256};
        to_json(&kb, v, depth + 1, false);
        if (kb.failed) {
            b->failed = 1;
            free(kb.s);
            return;
        }
        sb_json_str(b, kb.s, kb.len);
        free(kb.s);
        return;
    }
    switch (v->type) {
    case PK_NONE: sb_cstr(b, "null"); break;
    case PK_BOOL: sb_cstr(b, v->u.b ? "true" : "false"); break;
    case PK_INT:
        snprintf(t, sizeof t, "%lld", (long long)v->u.i);
        sb_cstr(b, t);
        break;
    case PK_FLOAT: sb_num(b, v->u.f); break;
    case PK_STR: sb_json_str(b, v->u.str.s, v->u.str.len); break;
    case PK_TUPLE:
    case PK_LIST:
        sb_put(b, "[", 1);
        for (size_t i = 0; i < v->u.seq.n; i++) {
            if (i)
                sb_put(b, ",", 1);
            to_json(b, v->u.seq.items[i], depth + 1, false);
        }
        sb_put(b, "]", 1);
        break;
    case PK_DICT:
        sb_put(b, "{", 1);
        for (size_t i = 0; i < v->u.dict.n; i++) {
            if (i)
                sb_put(b, ",", 1);
            to_json(b, v->u.dict.keys[i], depth + 1, true);
            sb_put(b, ":", 1);
            to_json(b, v->u.dict.vals[i], depth + 1, false);
        }
        sb_put(b, "}", 1);
        break;
    default: b->failed = err_set("a %s cannot be written as JSON", pk_type_name(v->type));
    }
}

char *pk_to_json(const pk_value *v, size_t max_len)
{
    struct sbuf b = {.max = max_len};
    to_json(&b, v, 0, false);
    if (b.failed || !b.s) {
        if (!b.failed)
            err_set("out of memory");
        free(b.s);
        return NULL;
    }
    return b.s;
}
