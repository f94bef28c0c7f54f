/*
 * torchfile-write: tf_sets written as torch zip checkpoints (tf_set_save_pth
 * of torchfile.h): the JSON metadata turned back into pickle values, the
 * pickle torch.save would write for the reference project's checkpoint dict
 * (networks, optimizers, schedulers), and the zip around it.  The tf_set and
 * the readers are lib/format/torchfile.c.
 */
#include "torchfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "base/err.h"
#include "pickle.h"
#include "torchfile-impl.h"
#include "zipmem.h"

// ----------------------------------------------------------------------------
// writing .pth: JSON metadata back to pickle values

struct jp {
    const char *p;
    pk_writer *w;
};

static void jp_ws(struct jp *j)
{
    while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
        j->p++;
}

static int jp_string(struct jp *j)
{
    size_t cap = 64, n = 0;
    char *s = malloc(cap);
    j->p++; /* opening quote */
    while (s && *j->p && *j->p != '"') {
        char c = *j->p++;
        unsigned cp = (unsigned char)c;
        char u8[4];
        int k = 1;
        if (c == '\\') {
            c = *j->p++;
            switch (c) {
            case 'n': u8[0] = '\n'; break;
            case 't': u8[0] = '\t'; break;
            case 'r': u8[0] = '\r'; break;
            case 'b': u8[0] = '\b'; break;
            case 'f': u8[0] = '\f'; break;
            case 'u':
                if (sscanf(j->p, "%4x", &cp) != 1 || strlen(j->p) < 4) {
                    free(s);
                    return err_set("bad \\u escape");
                }
                j->p += 4;
                if (cp < 0x80)
                    u8[0] = (char)cp;
                else if (cp < 0x800) {
                    u8[0] = (char)(0xC0 | cp >> 6);
                    u8[1] = (char)(0x80 | (cp & 63));
                    k = 2;
                } else {
                    u8[0] = (char)(0xE0 | cp >> 12);
                    u8[1] = (char)(0x80 | ((cp >> 6) & 63));
                    u8[2] = (char)(0x80 | (cp & 63));
                    k = 3;
                }
                break;
            case 0: free(s); return err_set("unterminated string");
            default: u8[0] = c;
            }
        } else
            u8[0] = c;
        if (n + 4 > cap) {
            char *m = realloc(s, cap *= 2);
            if (!m)
                free(s);
            s = m;
        }
        if (s) {
            memcpy(s + n, u8, (size_t)k);
            n += (size_t)k;
        }
    }
    if (!s)
        return err_set("out of memory");
    if (*j->p != '"') {
        free(s);
        return err_set("unterminated string");
    }
    j->p++;
    pkw_str(j->w, s, n);
    free(s);
    return 0;
}

/* One JSON value -> pickle.  Arrays under "betas" become tuples (as torch
 * keeps them); numbers with '.', 'e' or NaN/Infinity are floats, others ints. */
static int jp_value(struct jp *j, int depth, int as_tuple)
{
    jp_ws(j);
    if (depth > PK_MAX_DEPTH)
        return err_set("JSON nested too deeply");
    const char *p = j->p;
    if (*p == '{') {
        j->p++;
        pkw_op(j->w, '}');
        jp_ws(j);
        if (*j->p == '}') {
            j->p++;
            return 0;
        }
        for (;;) {
            jp_ws(j);
            if (*j->p != '"')
                return err_set("JSON object key is not a string");
            const char *kstart = j->p;
            if (jp_string(j))
                return -1;
            int betas = !strncmp(kstart, "\"betas\"", 7);
            jp_ws(j);
            if (*j->p++ != ':')
                return err_set("JSON: ':' expected");
            if (jp_value(j, depth + 1, betas))
                return -1;
            pkw_op(j->w, 's');
            jp_ws(j);
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            if (*j->p++ != '}')
                return err_set("JSON: '}' expected");
            return 0;
        }
    }
    if (*p == '[') {
        j->p++;
        pkw_op(j->w, as_tuple ? '(' : ']');
        jp_ws(j);
        if (*j->p != ']')
            for (;;) {
                if (jp_value(j, depth + 1, 0))
                    return -1;
                if (!as_tuple)
                    pkw_op(j->w, 'a');
                jp_ws(j);
                if (*j->p == ',') {
                    j->p++;
                    continue;
                }
                break;
            }
        if (*j->p++ != ']')
            return err_set("JSON: ']' expected");
        if (as_tuple)
            pkw_op(j->w, 't');
        return 0;
    }
    if (*p == '"')
        return jp_string(j);
    if (!strncmp(p, "true", 4) || !strncmp(p, "false", 5)) {
        pkw_bool(j->w, *p == 't');
        j->p += *p == 't' ? 4 : 5;
        return 0;
    }
    if (!strncmp(p, "null", 4)) {
        pkw_none(j->w);
        j->p += 4;
        return 0;
    }
    char *end;
    double d = strtod(p, &end); /* also takes NaN, Infinity, -Infinity */
    if (end == p)
        return err_set("JSON: unexpected '%.10s'", p);
    int is_float = 0;
    for (const char *q = p; q < end; q++)
        is_float |= (*q == '.' || *q == 'e' || *q == 'E' || *q == 'N' || *q == 'I' || *q == 'n' || *q == 'i');
    errno = 0;
    long long ll = is_float ? 0 : strtoll(p, NULL, 10);
    if (is_float || errno == ERANGE)
        pkw_float(j->w, d);
    else
        pkw_int(j->w, ll);
    j->p = end;
    return 0;
}

static int json_to_pickle(pk_writer *w, const char *json, const char *what)
{
    struct jp j = {json, w};
    if (jp_value(&j, 0, 0))
        return err_wrap("metadata '%s'", what);
    jp_ws(&j);
    if (*j.p)
        return err_set("metadata '%s': trailing characters after the JSON value", what);
    return 0;
}

// ----------------------------------------------------------------------------
// writing .pth: the pickle and the zip

struct pth {
    pk_writer w;
    const tf_tensor **st; /* storage i = tensor */
    int nst, capst;
};

static const char *storage_class(st_dtype t)
{
    switch (t) {
    case ST_F32: return "FloatStorage";
    case ST_F64: return "DoubleStorage";
    case ST_F16: return "HalfStorage";
    case ST_BF16: return "BFloat16Storage";
    case ST_I64: return "LongStorage";
    case ST_I32: return "IntStorage";
    case ST_I16: return "ShortStorage";
    case ST_I8: return "CharStorage";
    case ST_U8: return "ByteStorage";
    case ST_BOOL: return "BoolStorage";
    case ST_C64: return "ComplexFloatStorage";
    default: return NULL;
    }
}

static int emit_tensor(struct pth *o, const tf_tensor *t)
{
    const char *cls = storage_class(t->dtype);
    if (!cls)
        return err_set("tensor '%s': %s cannot be saved for torch", t->name, st_dtype_name(t->dtype));
    if (tf_grow((void **)&o->st, &o->capst, o->nst, sizeof *o->st))
        return -1;
    char key[24];
    snprintf(key, sizeof key, "%d", o->nst);
    o->st[o->nst++] = t;
    pk_writer *w = &o->w;
    pkw_global(w, "torch._utils", "_rebuild_tensor_v2");
    pkw_op(w, '(');
    pkw_op(w, '(');
    pkw_cstr(w, "storage");
    pkw_global(w, "torch", cls);
    pkw_cstr(w, key);
    pkw_cstr(w, "cpu");
    pkw_int(w, t->numel);
    pkw_op(w, 't');
    pkw_op(w, 'Q');
    pkw_int(w, 0);
    pkw_op(w, '(');
    for (int i = 0; i < t->ndim; i++)
        pkw_int(w, t->shape[i]);
    pkw_op(w, 't');
    pkw_op(w, '(');
    for (int i = 0; i < t->ndim; i++) {
        int64_t s = 1;
        for (int k = i + 1; k < t->ndim; k++)
            s *= t->shape[k];
        pkw_int(w, s);
    }
    pkw_op(w, 't');
    pkw_bool(w, 0);
    pkw_global(w, "collections", "OrderedDict");
    pkw_op(w, ')');
    pkw_op(w, 'R');
    pkw_op(w, 't');
    pkw_op(w, 'R');
    return 0;
}

/* Length of the first dotted component. */
static size_t head_len(const char *name)
{
    const char *d = strchr(name, '.');
    return d ? (size_t)(d - name) : strlen(name);
}

static int suffix_rank(const char *name)
{
    static const char *const order[] = {
        "weight", "bias",    "running_mean", "running_var",   "num_batches_tracked",
        "step",   "exp_avg", "exp_avg_sq",   "max_exp_avg_sq"};
    const char *d = strrchr(name, '.');
    const char *last = d ? d + 1 : name;
    for (int i = 0; i < 9; i++)
        if (!strcmp(last, order[i]))
            return i;
    return 9;
}

struct ord {
    const tf_tensor *t;
    int64_t k1, k2, k3;
};

static int ord_cmp(const void *a, const void *b)
{
    const struct ord *x = a, *y = b;
    if (x->k1 != y->k1)
        return x->k1 < y->k1 ? -1 : 1;
    if (x->k2 != y->k2)
        return x->k2 < y->k2 ? -1 : 1;
    return (x->k3 > y->k3) - (x->k3 < y->k3);
}

/* The tensors of group `g` (names "g.rest") in state_dict order: modules by
 * the first appearance of a non-num_batches_tracked tensor, then weight,
 * bias, running_mean, running_var, num_batches_tracked. */
static struct ord *group_tensors(const tf_set *s, const char *g, int *n)
{
    size_t gl = strlen(g);
    struct ord *o = calloc((size_t)s->n + 1, sizeof *o);
    strmap first = {0}; /* module ("G.model.2") -> its first tensor other than num_batches_tracked */
    if (!o)
        return NULL;
    *n = 0;
    for (int i = 0; i < s->n; i++) {
        const char *nm = s->t[i].name, *last = strrchr(nm, '.');
        if (strncmp(nm, g, gl) != 0 || nm[gl] != '.' || strcmp(last, ".num_batches_tracked") == 0)
            continue;
        if (strmap_put(&first, nm, (size_t)(last - nm), i, NULL) < 0) {
            free(o);
            strmap_free(&first);
            return NULL;
        }
    }
    for (int i = 0; i < s->n; i++) {
        const char *nm = s->t[i].name;
        if (strncmp(nm, g, gl) != 0 || nm[gl] != '.')
            continue;
        int at = strmap_get(&first, nm, (size_t)(strrchr(nm, '.') - nm));
        o[*n] = (struct ord){&s->t[i], at >= 0 ? at : i, suffix_rank(nm), i};
        (*n)++;
    }
    strmap_free(&first);
    qsort(o, (size_t)*n, sizeof *o, ord_cmp);
    return o;
}

static int emit_net(struct pth *o, const tf_set *s, const char *g)
{
    int n;
    struct ord *t = group_tensors(s, g, &n);
    if (!t)
        return err_set("out of memory");
    pk_writer *w = &o->w;
    pkw_cstr(w, g);
    pkw_global(w, "collections", "OrderedDict");
    pkw_op(w, ')');
    pkw_op(w, 'R');
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        pkw_cstr(w, t[i].t->name + strlen(g) + 1);
        rc = emit_tensor(o, t[i].t);
        pkw_op(w, 's');
    }
    pkw_op(w, 's');
    free(t);
    return rc;
}

static int net_param_count(const tf_set *s, const char *net)
{
    size_t l = strlen(net);
    int n = 0;
    for (int i = 0; i < s->n; i++)
        n += !strncmp(s->t[i].name, net, l) && s->t[i].name[l] == '.' && !tf_is_buffer_name(s->t[i].name);
    return n;
}

static int emit_optimizer(struct pth *o, const tf_set *s, const char *g)
{
    pk_writer *w = &o->w;
    int n;
    struct ord *t = group_tensors(s, g, &n);
    if (!t)
        return err_set("out of memory");
    /* parse "opt_X.state.N.field"; order by N then field rank */
    size_t gl = strlen(g);
    int64_t maxidx = -1;
    for (int i = 0; i < n; i++) {
        const char *rest = t[i].t->name + gl + 1;
        char *end;
        long long idx = strncmp(rest, "state.", 6) ? -1 : strtoll(rest + 6, &end, 10);
        if (idx < 0 || end == rest + 6 || *end != '.' || !end[1]) {
            err_set("tensor '%s' is not opt_X.state.N.field", t[i].t->name);
            free(t);
            return -1;
        }
        t[i].k1 = idx;
        maxidx = idx > maxidx ? idx : maxidx;
    }
    qsort(t, (size_t)n, sizeof *t, ord_cmp);
    pkw_cstr(w, g);
    pkw_op(w, '}');
    pkw_cstr(w, "state");
    pkw_op(w, '}');
    int rc = 0;
    for (int i = 0; i < n && !rc;) {
        int64_t idx = t[i].k1;
        pkw_int(w, idx);
        pkw_op(w, '}');
        for (; i < n && t[i].k1 == idx && !rc; i++) {
            pkw_cstr(w, strrchr(t[i].t->name, '.') + 1);
            rc = emit_tensor(o, t[i].t);
            pkw_op(w, 's');
        }
        pkw_op(w, 's');
    }
    free(t);
    if (rc)
        return -1;
    pkw_op(w, 's'); /* state */
    pkw_cstr(w, "param_groups");
    char key[160];
    snprintf(key, sizeof key, "%s.param_groups", g);
    const char *json = tf_set_get_meta(s, key);
    int nparams = net_param_count(s, g + 4);
    if (nparams == 0)
        nparams = (int)(maxidx + 1);
    if (json && json[strspn(json, " \t\n")] == '[') { /* several groups, kept whole */
        if (json_to_pickle(w, json, key))
            return -1;
        pkw_op(w, 's');
        pkw_op(w, 's');
        return 0;
    }
    pkw_op(w, ']');
    if (json) {
        if (json_to_pickle(w, json, key))
            return -1;
    } else { /* the reference's Adam settings */
        int gen = !strcmp(g, "opt_G") || !strcmp(g, "opt_F");
        pkw_op(w, '}');
        pkw_cstr(w, "lr");
        pkw_float(w, gen ? 2e-4 : 1e-4);
        pkw_op(w, 's');
        pkw_cstr(w, "betas");
        pkw_float(w, 0.5);
        pkw_float(w, 0.999);
        pkw_op(w, 0x86);
        pkw_op(w, 's');
        pkw_cstr(w, "eps");
        pkw_float(w, 1e-8);
        pkw_op(w, 's');
        pkw_cstr(w, "weight_decay");
        pkw_float(w, 1e-4);
        pkw_op(w, 's');
        pkw_cstr(w, "amsgrad");
        pkw_bool(w, 0);
        pkw_op(w, 's');
    }
    pkw_cstr(w, "params");
    pkw_op(w, ']');
    for (int i = 0; i < nparams; i++) {
        pkw_int(w, i);
        pkw_op(w, 'a');
    }
    pkw_op(w, 's'); /* group["params"] */
    pkw_op(w, 'a'); /* groups.append */
    pkw_op(w, 's'); /* param_groups */
    pkw_op(w, 's'); /* top[g] */
    return 0;
}

/* LambdaLR state for a checkpoint that has only sched_epoch (cyclegan-step's). */
static int emit_sched_from_epoch(pk_writer *w, const tf_set *s, const char *net, long long epoch)
{
    char key[160], name[160];
    snprintf(key, sizeof key, "opt_%s.param_groups", net);
    const char *json = tf_set_get_meta(s, key);
    if (!json)
        return 0;
    double lr = 0, initial = 0;
    const char *p = strstr(json, "\"lr\":"), *q = strstr(json, "\"initial_lr\":");
    if (!p || !q)
        return 0;
    lr = strtod(p + 5, NULL);
    initial = strtod(q + 13, NULL);
    snprintf(name, sizeof name, "sched_%s", net);
    pkw_cstr(w, name);
    pkw_op(w, '}');
    pkw_cstr(w, "base_lrs");
    pkw_op(w, ']');
    pkw_float(w, initial);
    pkw_op(w, 'a');
    pkw_op(w, 's');
    pkw_cstr(w, "last_epoch");
    pkw_int(w, epoch);
    pkw_op(w, 's');
    pkw_cstr(w, "verbose");
    pkw_bool(w, 0);
    pkw_op(w, 's');
    pkw_cstr(w, "_step_count");
    pkw_int(w, epoch + 1);
    pkw_op(w, 's');
    pkw_cstr(w, "_get_lr_called_within_step");
    pkw_bool(w, 0);
    pkw_op(w, 's');
    pkw_cstr(w, "_last_lr");
    pkw_op(w, ']');
    pkw_float(w, lr);
    pkw_op(w, 'a');
    pkw_op(w, 's');
    pkw_cstr(w, "lr_lambdas");
    pkw_op(w, ']');
    pkw_none(w);
    pkw_op(w, 'a');
    pkw_op(w, 's');
    pkw_op(w, 's');
    return 0;
}

static int build_pickle(struct pth *o, const tf_set *s)
{
    pk_writer *w = &o->w;
    pkw_init(w);
    pkw_op(w, '}');
    const char *ep = tf_set_get_meta(s, "epoch");
    char *end;
    long long epoch = ep ? strtoll(ep, &end, 10) : 0;
    if (ep && *ep && !*end) {
        pkw_cstr(w, "epoch");
        pkw_int(w, epoch);
        pkw_op(w, 's');
    }
    /* groups in order: the reference's nets first, then others; optimisers after nets */
    static const char *const known[] = {"G", "F", "DX", "DY"};
    char(*groups)[128] = calloc((size_t)s->n + 4, sizeof *groups);
    strmap seen_groups = {0};
    int ng = 0;
    if (!groups)
        return err_set("out of memory");
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < s->n; i++)
            if (head_len(s->t[i].name) == strlen(known[k]) &&
                !strncmp(s->t[i].name, known[k], strlen(known[k])) && s->t[i].name[strlen(known[k])] == '.') {
                snprintf(groups[ng], 128, "%s", known[k]);
                if (strmap_put(&seen_groups, groups[ng], strlen(groups[ng]), ng, NULL) < 0)
                    return free(groups), strmap_free(&seen_groups), -1;
                ng++;
                break;
            }
    int rc = 0;
    for (int i = 0; i < s->n && !rc; i++) {
        size_t hl = head_len(s->t[i].name);
        if (!s->t[i].name[hl])
            rc = err_set("tensor '%s' has no group prefix (G., opt_G., ...)", s->t[i].name);
        else if (hl >= 128)
            rc = err_set("tensor '%s': group name too long", s->t[i].name);
        else if (strmap_get(&seen_groups, s->t[i].name, hl) < 0) {
            memcpy(groups[ng], s->t[i].name, hl);
            groups[ng][hl] = 0;
            rc = strmap_put(&seen_groups, groups[ng], hl, ng, NULL) < 0 ? -1 : 0;
            ng++;
        }
    }
    strmap_free(&seen_groups);
    for (int pass = 0; pass < 2 && !rc; pass++) /* nets, then optimisers */
        for (int g = 0; g < ng && !rc; g++) {
            int is_opt = !strncmp(groups[g], "opt_", 4);
            if (is_opt == pass)
                rc = is_opt ? emit_optimizer(o, s, groups[g]) : emit_net(o, s, groups[g]);
        }
    int nsched = 0;
    for (int i = 0; i < s->nmeta && !rc; i++)
        if (!strncmp(s->meta_key[i], "sched_", 6) && strcmp(s->meta_key[i], "sched_epoch") != 0 &&
            s->meta_val[i][strspn(s->meta_val[i], " ")] == '{') {
            pkw_cstr(w, s->meta_key[i]);
            rc = json_to_pickle(w, s->meta_val[i], s->meta_key[i]);
            pkw_op(w, 's');
            nsched++;
        }
    const char *se = tf_set_get_meta(s, "sched_epoch");
    if (!rc && !nsched && se) {
        long long e = strtoll(se, &end, 10);
        for (int g = 0; g < ng && !rc && !*end; g++)
            if (!strncmp(groups[g], "opt_", 4))
                rc = emit_sched_from_epoch(w, s, groups[g] + 4, e);
    }
    free(groups);
    return rc ? -1 : pkw_finish(w);
}

static int member_add(zip_t *za, const char *name, const void *data, size_t len, uint64_t *offset)
{
    zip_source_t *src = zip_source_buffer(za, data, len, 0);
    zip_int64_t idx = src ? zip_file_add(za, name, src, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE) : -1;
    if (idx < 0) {
        zip_source_free(src);
        return err_set("%s: %s", name, zip_strerror(za));
    }
    /* torch aligns storage data to 64 bytes with an "FB" extra field of 'Z's */
    size_t nl = strlen(name), pad = (64 - (*offset + 30 + nl + 4) % 64) % 64;
    static const char zs[64] = "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ";
    if (zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0) ||
        zip_file_set_mtime(za, (zip_uint64_t)idx, 315705600, 0) || /* 1980-01-02: reproducible output */
        zip_file_extra_field_set(za, (zip_uint64_t)idx, 0x4246, ZIP_EXTRA_FIELD_NEW, (const zip_uint8_t *)zs,
                                 (zip_uint16_t)pad, ZIP_FL_LOCAL))
        return err_set("%s: %s", name, zip_strerror(za));
    *offset += 30 + nl + 4 + pad + len;
    return 0;
}

int tf_set_save_pth(const tf_set *s, const char *path)
{
    struct pth o = {0};
    if (build_pickle(&o, s)) {
        err_wrap("%s", path);
        pkw_destroy(&o.w);
        free(o.st);
        return -1;
    }
    /* the archive root is the file name's stem, as torch.save names it */
    char root[128];
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t bl = strcspn(base, ".");
    if (bl == 0 || bl >= sizeof root)
        snprintf(root, sizeof root, "archive");
    else
        snprintf(root, sizeof root, "%.*s", (int)bl, base);
    for (char *c = root; *c; c++)
        if ((unsigned char)*c < 0x20)
            *c = '_';
    zip_source_t *mem;
    zip_t *za = zipmem_new(&mem, path);
    if (!za) {
        pkw_destroy(&o.w);
        free(o.st);
        return -1;
    }
    char name[300];
    uint64_t off = 0;
    snprintf(name, sizeof name, "%s/data.pkl", root);
    int rc = member_add(za, name, o.w.buf, o.w.len, &off);
    snprintf(name, sizeof name, "%s/byteorder", root);
    rc = rc || member_add(za, name, "little", 6, &off);
    for (int i = 0; i < o.nst && !rc; i++) {
        snprintf(name, sizeof name, "%s/data/%d", root, i);
        rc = member_add(za, name, o.st[i]->data, o.st[i]->nbytes, &off);
    }
    snprintf(name, sizeof name, "%s/version", root);
    rc = rc || member_add(za, name, "3\n", 2, &off);
    if (!rc) {
        rc = zipmem_save(za, mem, path);
    } else {
        err_wrap("%s", path);
        zipmem_discard(za, mem);
    }
    pkw_destroy(&o.w);
    free(o.st);
    return rc ? -1 : 0;
}
