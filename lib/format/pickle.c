/*
 * pickle: the stack machine of a pickle *data* reader (see pickle.h for the
 * accepted opcodes and globals) and the queries on what it parsed.  The
 * writer of the protocol-2 subset is pickle-write.c, the JSON view of a
 * parsed value pickle-json.c.
 *
 * Every node comes from one arena per document (pk_doc), freed at once.
 * The stack, the mark stack and the memo are plain growable arrays bounded
 * by the input length.  No recursion while parsing.
 */
#include "pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

// ----------------------------------------------------------------------------
// arena

struct chunk {
    struct chunk *next;
    size_t used, size;
    max_align_t data[];
};

struct pk_doc {
    struct chunk *chunks;
    size_t total;
    pk_value *root;
    const pk_value **storages; /* every PK_STORAGE made, in order */
    size_t nstorages, capstorages;
};

static void *arena_alloc(pk_doc *d, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct chunk *c = d->chunks;
    if (!c || c->size - c->used < n) {
        size_t size = n > (1u << 16) ? n : (1u << 16);
        if (d->total + size > PK_MAX_BYTES)
            return NULL;
        c = malloc(sizeof *c + size);
        if (!c)
            return NULL;
        c->size = size;
        c->used = 0;
        c->next = d->chunks;
        d->chunks = c;
        d->total += size;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

void pk_free(pk_doc *d)
{
    if (!d)
        return;
    for (struct chunk *c = d->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(d);
}

const pk_value *pk_root(const pk_doc *d)
{
    return d ? d->root : NULL;
}
size_t pk_storage_count(const pk_doc *d)
{
    return d ? d->nstorages : 0;
}
const pk_value *pk_storage_at(const pk_doc *d, size_t i)
{
    return i < pk_storage_count(d) ? d->storages[i] : NULL;
}

// ----------------------------------------------------------------------------
// names

static const char *const dtype_names[PK_DTYPE_COUNT] = {"float32", "float64", "float16",   "bfloat16",
                                                        "int64",   "int32",   "int16",     "int8",
                                                        "uint8",   "bool",    "complex64", "complex128"};
static const size_t dtype_sizes[PK_DTYPE_COUNT] = {4, 8, 2, 2, 8, 4, 2, 1, 1, 1, 8, 16};
static const char *const storage_names[PK_DTYPE_COUNT] = {
    "FloatStorage", "DoubleStorage", "HalfStorage",         "BFloat16Storage",
    "LongStorage",  "IntStorage",    "ShortStorage",        "CharStorage",
    "ByteStorage",  "BoolStorage",   "ComplexFloatStorage", "ComplexDoubleStorage"};

const char *pk_dtype_name(pk_dtype t)
{
    return (unsigned)t < PK_DTYPE_COUNT ? dtype_names[t] : "?";
}
size_t pk_dtype_size(pk_dtype t)
{
    return (unsigned)t < PK_DTYPE_COUNT ? dtype_sizes[t] : 0;
}

const char *pk_type_name(pk_type t)
{
    static const char *const names[] = {"None",  "bool", "int",  "int",    "float",   "str",   "bytes",
                                        "tuple", "list", "dict", "global", "storage", "tensor"};
    return (unsigned)t <= PK_TENSOR ? names[t] : "?";
}

// ----------------------------------------------------------------------------
// the machine

struct vm {
    pk_doc *d;
    const uint8_t *p, *end, *start;
    const char *label;
    pk_value **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nmarks, mcap;
    pk_value **memo;
    size_t memo_cap, memo_max, memo_len; /* memo_len: defined entries (MEMOIZE's next index) */
};

static pk_value none_v = {.type = PK_NONE};
static pk_value true_v = {.type = PK_BOOL, .u.b = true};
static pk_value false_v = {.type = PK_BOOL, .u.b = false};

static int fail(struct vm *m, const char *fmt, const char *arg)
{
    char what[256];
    snprintf(what, sizeof what, fmt, arg);
    return err_set("%s: offset %zu: %s", m->label, (size_t)(m->p - m->start), what);
}

static int oom(struct vm *m)
{
    return fail(m, "%s", "out of memory (pickle too large)");
}

static pk_value *new_value(struct vm *m, pk_type t)
{
    pk_value *v = arena_alloc(m->d, sizeof *v);
    if (v) {
        memset(v, 0, sizeof *v);
        v->type = t;
    }
    return v;
}

static int push(struct vm *m, pk_value *v)
{
    if (!v)
        return oom(m);
    if (m->sp == m->scap) {
        size_t cap = m->scap ? 2 * m->scap : 64;
        pk_value **s = realloc(m->stack, cap * sizeof *s);
        if (!s)
            return oom(m);
        m->stack = s;
        m->scap = cap;
    }
    m->stack[m->sp++] = v;
    return 0;
}

/* Items above the top mark, which must not be crossed by plain pops. */
static size_t floor_(const struct vm *m)
{
    return m->nmarks ? m->marks[m->nmarks - 1] : 0;
}

static pk_value *pop(struct vm *m)
{
    if (m->sp <= floor_(m)) {
        fail(m, "%s", "stack underflow");
        return NULL;
    }
    return m->stack[--m->sp];
}

static pk_value *top(struct vm *m)
{
    if (m->sp <= floor_(m)) {
        fail(m, "%s", "stack underflow");
        return NULL;
    }
    return m->stack[m->sp - 1];
}

/* Pop to the top mark: *base = index of the first item; the mark is removed. */
static int pop_mark(struct vm *m, size_t *base)
{
    if (!m->nmarks)
        return fail(m, "%s", "no mark on the stack");
    *base = m->marks[--m->nmarks];
    return 0;
}

static int need(struct vm *m, size_t n)
{
    if ((size_t)(m->end - m->p) < n)
        return fail(m, "%s", "truncated pickle");
    return 0;
}

static uint64_t rd_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static pk_value *make_str(struct vm *m, pk_type t, const uint8_t *s, size_t n)
{
    pk_value *v = new_value(m, t);
    char *c = v ? arena_alloc(m->d, n + 1) : NULL;
    if (!c)
        return NULL;
    memcpy(c, s, n);
    c[n] = 0;
    v->u.str.s = c;
    v->u.str.len = n;
    return v;
}

static pk_value *make_seq(struct vm *m, pk_type t, pk_value **items, size_t n)
{
    pk_value *v = new_value(m, t);
    if (!v)
        return NULL;
    if (n) {
        v->u.seq.items = arena_alloc(m->d, n * sizeof *items);
        if (!v->u.seq.items)
            return NULL;
        memcpy(v->u.seq.items, items, n * sizeof *items);
    }
    v->u.seq.n = v->u.seq.cap = n;
    return v;
}

static int list_append(struct vm *m, pk_value *l, pk_value *x)
{
    if (l->u.seq.n == l->u.seq.cap) {
        size_t cap = l->u.seq.cap ? 2 * l->u.seq.cap : 8;
        pk_value **it = arena_alloc(m->d, cap * sizeof *it);
        if (!it)
            return oom(m);
        if (l->u.seq.n)
            memcpy(it, l->u.seq.items, l->u.seq.n * sizeof *it);
        l->u.seq.items = it;
        l->u.seq.cap = cap;
    }
    l->u.seq.items[l->u.seq.n++] = x;
    return 0;
}

static int dict_set(struct vm *m, pk_value *d, pk_value *k, pk_value *v)
{
    if (d->type != PK_DICT)
        return fail(m, "SETITEM on a %s", pk_type_name(d->type));
    if (d->u.dict.n == d->u.dict.cap) {
        size_t cap = d->u.dict.cap ? 2 * d->u.dict.cap : 8;
        pk_value **ks = arena_alloc(m->d, cap * sizeof *ks), **vs = arena_alloc(m->d, cap * sizeof *vs);
        if (!ks || !vs)
            return oom(m);
        if (d->u.dict.n) {
            memcpy(ks, d->u.dict.keys, d->u.dict.n * sizeof *ks);
            memcpy(vs, d->u.dict.vals, d->u.dict.n * sizeof *vs);
        }
        d->u.dict.keys = ks;
        d->u.dict.vals = vs;
        d->u.dict.cap = cap;
    }
    d->u.dict.keys[d->u.dict.n] = k;
    d->u.dict.vals[d->u.dict.n++] = v;
    return 0;
}

static int memo_put(struct vm *m, uint64_t idx, pk_value *v)
{
    if (!v)
        return -1;
    if (idx >= m->memo_max)
        return fail(m, "%s", "memo index out of range");
    if (idx >= m->memo_cap) {
        size_t cap = m->memo_cap ? m->memo_cap : 64;
        while (cap <= idx)
            cap *= 2;
        pk_value **mm = realloc(m->memo, cap * sizeof *mm);
        if (!mm)
            return oom(m);
        memset(mm + m->memo_cap, 0, (cap - m->memo_cap) * sizeof *mm);
        m->memo = mm;
        m->memo_cap = cap;
    }
    m->memo_len += m->memo[idx] == NULL;
    m->memo[idx] = v;
    return 0;
}

static int memo_get(struct vm *m, uint64_t idx)
{
    if (idx >= m->memo_cap || !m->memo[idx])
        return fail(m, "%s", "memo key not defined");
    return push(m, m->memo[idx]);
}

/* GLOBAL module.name -> a whitelisted PK_GLOBAL, or an error naming it. */
static int global(struct vm *m, const char *mod, const char *name)
{
    pk_value *g = new_value(m, PK_GLOBAL);
    if (!g)
        return oom(m);
    if (!strcmp(mod, "collections") && !strcmp(name, "OrderedDict"))
        g->u.global.which = PK_G_ORDERED_DICT;
    else if (!strcmp(mod, "torch._utils") && !strcmp(name, "_rebuild_tensor_v2"))
        g->u.global.which = PK_G_REBUILD_TENSOR_V2;
    else if (!strcmp(mod, "torch._utils") && !strcmp(name, "_rebuild_tensor"))
        g->u.global.which = PK_G_REBUILD_TENSOR;
    else if (!strcmp(mod, "torch._utils") && !strcmp(name, "_rebuild_parameter"))
        g->u.global.which = PK_G_REBUILD_PARAMETER;
    else {
        int t = -1;
        if (!strcmp(mod, "torch"))
            for (int i = 0; i < PK_DTYPE_COUNT; i++)
                if (!strcmp(name, storage_names[i]))
                    t = i;
        if (t < 0) {
            char full[160];
            snprintf(full, sizeof full, "%.70s.%.70s", mod, name);
            return fail(m, "forbidden global '%s' (only torch tensors, storages and OrderedDict are read)",
                        full);
        }
        g->u.global.which = PK_G_STORAGE;
        g->u.global.dtype = (pk_dtype)t;
    }
    return push(m, g);
}

static int op_global_text(struct vm *m)
{
    const uint8_t *nl1 = memchr(m->p, '\n', (size_t)(m->end - m->p));
    const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(m->end - nl1 - 1)) : NULL;
    if (!nl2)
        return fail(m, "%s", "truncated GLOBAL");
    char mod[128], name[128];
    size_t a = (size_t)(nl1 - m->p), b = (size_t)(nl2 - nl1 - 1);
    if (a >= sizeof mod || b >= sizeof name)
        return fail(m, "%s", "GLOBAL name too long");
    memcpy(mod, m->p, a);
    mod[a] = 0;
    memcpy(name, nl1 + 1, b);
    name[b] = 0;
    m->p = nl2 + 1;
    return global(m, mod, name);
}

static bool is_int(const pk_value *v)
{
    return v && v->type == PK_INT;
}

/* A tuple of n ints -> arena array. */
static int int_tuple(struct vm *m, const pk_value *t, int64_t **out, int *n, const char *what)
{
    if (!t || t->type != PK_TUPLE)
        return fail(m, "tensor %s is not a tuple", what);
    if (t->u.seq.n > PK_MAX_DIMS)
        return fail(m, "tensor %s has too many dimensions", what);
    *n = (int)t->u.seq.n;
    *out = arena_alloc(m->d, (t->u.seq.n + 1) * sizeof **out);
    if (!*out)
        return oom(m);
    for (size_t i = 0; i < t->u.seq.n; i++) {
        if (!is_int(t->u.seq.items[i]) || t->u.seq.items[i]->u.i < 0)
            return fail(m, "tensor %s holds a non-integer or negative entry", what);
        (*out)[i] = t->u.seq.items[i]->u.i;
    }
    return 0;
}

static int rebuild_tensor(struct vm *m, const pk_value *args, bool v2)
{
    size_t n = args->u.seq.n;
    if (v2 ? (n != 6 && n != 7) : n != 4)
        return fail(m, "%s", "_rebuild_tensor called with the wrong number of arguments");
    pk_value **a = args->u.seq.items;
    if (a[0]->type != PK_STORAGE)
        return fail(m, "%s", "_rebuild_tensor: first argument is not a storage");
    if (!is_int(a[1]) || a[1]->u.i < 0)
        return fail(m, "%s", "_rebuild_tensor: bad storage offset");
    pk_value *t = new_value(m, PK_TENSOR);
    if (!t)
        return oom(m);
    int nd = 0, ns = 0;
    if (int_tuple(m, a[2], &t->u.tensor.shape, &nd, "size") ||
        int_tuple(m, a[3], &t->u.tensor.stride, &ns, "stride"))
        return -1;
    if (nd != ns)
        return fail(m, "%s", "tensor size and stride differ in length");
    t->u.tensor.storage = a[0];
    t->u.tensor.offset = a[1]->u.i;
    t->u.tensor.ndim = nd;
    t->u.tensor.requires_grad = v2 && a[4]->type == PK_BOOL && a[4]->u.b;
    return push(m, t);
}

static int op_reduce(struct vm *m)
{
    pk_value *args = pop(m), *fn = args ? pop(m) : NULL;
    if (!fn)
        return -1;
    if (fn->type != PK_GLOBAL)
        return fail(m, "REDUCE on a %s, not a global", pk_type_name(fn->type));
    if (args->type != PK_TUPLE)
        return fail(m, "%s", "REDUCE arguments are not a tuple");
    switch (fn->u.global.which) {
    case PK_G_ORDERED_DICT:
        if (args->u.seq.n != 0)
            return fail(m, "%s", "OrderedDict with arguments");
        return push(m, new_value(m, PK_DICT));
    case PK_G_REBUILD_TENSOR_V2: return rebuild_tensor(m, args, true);
    case PK_G_REBUILD_TENSOR: return rebuild_tensor(m, args, false);
    case PK_G_REBUILD_PARAMETER:
        if (args->u.seq.n < 1 || args->u.seq.items[0]->type != PK_TENSOR)
            return fail(m, "%s", "_rebuild_parameter without a tensor");
        return push(m, args->u.seq.items[0]);
    case PK_G_STORAGE:
    default: return fail(m, "%s", "a storage class called directly");
    }
}

static int op_persid(struct vm *m)
{
    pk_value *pid = pop(m);
    if (!pid)
        return -1;
    pk_value **a = pid->type == PK_TUPLE ? pid->u.seq.items : NULL;
    size_t n = a ? pid->u.seq.n : 0;
    if (!a || (n != 5 && n != 6) || a[0]->type != PK_STR || strcmp(a[0]->u.str.s, "storage") != 0)
        return fail(m, "%s", "persistent id is not a torch storage");
    if (a[1]->type != PK_GLOBAL || a[1]->u.global.which != PK_G_STORAGE)
        return fail(m, "%s", "persistent id without a storage type");
    if (a[2]->type != PK_STR || a[3]->type != PK_STR || !is_int(a[4]) || a[4]->u.i < 0)
        return fail(m, "%s", "malformed storage persistent id");
    if (n == 6 && a[5]->type != PK_NONE)
        return fail(m, "%s", "legacy storage views are not supported");
    pk_value *s = new_value(m, PK_STORAGE);
    if (!s)
        return oom(m);
    s->u.storage.dtype = a[1]->u.global.dtype;
    s->u.storage.key = a[2]->u.str.s;
    s->u.storage.location = a[3]->u.str.s;
    s->u.storage.numel = a[4]->u.i;
    pk_doc *d = m->d;
    if (d->nstorages == d->capstorages) {
        size_t cap = d->capstorages ? 2 * d->capstorages : 64;
        const pk_value **st = arena_alloc(d, cap * sizeof *st);
        if (!st)
            return oom(m);
        if (d->nstorages)
            memcpy(st, d->storages, d->nstorages * sizeof *st);
        d->storages = st;
        d->capstorages = cap;
    }
    d->storages[d->nstorages++] = s;
    return push(m, s);
}

static int op_build(struct vm *m)
{
    pk_value *state = pop(m), *obj = state ? top(m) : NULL;
    if (!obj)
        return -1;
    if (obj->type != PK_DICT && obj->type != PK_TENSOR)
        return fail(m, "BUILD on a %s", pk_type_name(obj->type));
    return 0; /* state_dict._metadata and tensor attributes are not data we keep */
}

static int run(struct vm *m)
{
    while (m->p < m->end) {
        uint8_t op = *m->p++;
        size_t base = 0;
        pk_value *v, *k, *x;
        switch (op) {
        case 0x80: /* PROTO */
            if (need(m, 1))
                return -1;
            if (*m->p > 5)
                return fail(m, "%s", "unsupported pickle protocol");
            m->p++;
            break;
        case 0x95: /* FRAME */
            if (need(m, 8))
                return -1;
            m->p += 8;
            break;
        case '.':
            if (m->sp != 1 || m->nmarks)
                return fail(m, "%s", "STOP with a malformed stack");
            m->d->root = m->stack[0];
            return 0;
        case '}':
            if (push(m, new_value(m, PK_DICT)))
                return -1;
            break;
        case ']':
            if (push(m, new_value(m, PK_LIST)))
                return -1;
            break;
        case ')':
            if (push(m, make_seq(m, PK_TUPLE, NULL, 0)))
                return -1;
            break;
        case '(':
            if (m->nmarks == m->mcap) {
                size_t cap = m->mcap ? 2 * m->mcap : 16;
                size_t *mk = realloc(m->marks, cap * sizeof *mk);
                if (!mk)
                    return oom(m);
                m->marks = mk;
                m->mcap = cap;
            }
            m->marks[m->nmarks++] = m->sp;
            break;
        case '1': /* POP_MARK */
            if (pop_mark(m, &base))
                return -1;
            m->sp = base;
            break;
        case '0': /* POP */
            if (!pop(m))
                return -1;
            break;
        case '2': /* DUP */
            if (!(v = top(m)) || push(m, v))
                return -1;
            break;
        case 't': {
            if (pop_mark(m, &base))
                return -1;
            /* A mark on an empty stack: no items, and maybe no stack yet. */
            size_t items = m->sp - base;
            if (push(m, make_seq(m, PK_TUPLE, items ? m->stack + base : NULL, items)))
                return -1;
            m->stack[base] = m->stack[m->sp - 1];
            m->sp = base + 1;
            break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {
            size_t n = (size_t)(op - 0x84);
            if (m->sp < floor_(m) + n)
                return fail(m, "%s", "stack underflow");
            v = make_seq(m, PK_TUPLE, m->stack + m->sp - n, n);
            m->sp -= n;
            if (push(m, v))
                return -1;
            break;
        }
        case 'X':
        case 'B':
        case 0x8C:
        case 'C': {
            int w = (op == 'X' || op == 'B') ? 4 : 1;
            if (need(m, (size_t)w))
                return -1;
            uint64_t n = rd_le(m->p, w);
            m->p += w;
            if (need(m, n))
                return -1;
            if (push(m, make_str(m, (op == 'X' || op == 0x8C) ? PK_STR : PK_BYTES, m->p, n)))
                return -1;
            m->p += n;
            break;
        }
        case 'K':
        case 'M':
        case 'J': {
            int w = op == 'K' ? 1 : op == 'M' ? 2 : 4;
            if (need(m, (size_t)w))
                return -1;
            if (!(v = new_value(m, PK_INT)))
                return oom(m);
            uint64_t u = rd_le(m->p, w);
            v->u.i = op == 'J' ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
            m->p += w;
            if (push(m, v))
                return -1;
            break;
        }
        case 0x8A: { /* LONG1 */
            if (need(m, 1))
                return -1;
            size_t n = *m->p++;
            if (need(m, n))
                return -1;
            if (n <= 8) {
                uint64_t u = rd_le(m->p, (int)n);
                if (n && n < 8 && (m->p[n - 1] & 0x80))
                    u |= ~(uint64_t)0 << (8 * n); /* sign-extend */
                v = new_value(m, PK_INT);
                if (v)
                    v->u.i = (int64_t)u;
            } else
                v = make_str(m, PK_BIGINT, m->p, n);
            m->p += n;
            if (push(m, v))
                return -1;
            break;
        }
        case 'G': {
            if (need(m, 8))
                return -1;
            uint64_t u = 0;
            for (int i = 0; i < 8; i++)
                u = u << 8 | m->p[i];
            m->p += 8;
            if (!(v = new_value(m, PK_FLOAT)))
                return oom(m);
            memcpy(&v->u.f, &u, 8);
            if (push(m, v))
                return -1;
            break;
        }
        case 0x88:
            if (push(m, &true_v))
                return -1;
            break;
        case 0x89:
            if (push(m, &false_v))
                return -1;
            break;
        case 'N':
            if (push(m, &none_v))
                return -1;
            break;
        case 'q':
        case 'r': {
            int w = op == 'q' ? 1 : 4;
            if (need(m, (size_t)w))
                return -1;
            uint64_t idx = rd_le(m->p, w);
            m->p += w;
            if (memo_put(m, idx, top(m)))
                return -1;
            break;
        }
        case 0x94: /* MEMOIZE: memo[len(memo)] = top */
            if (memo_put(m, m->memo_len, top(m)))
                return -1;
            break;
        case 'h':
        case 'j': {
            int w = op == 'h' ? 1 : 4;
            if (need(m, (size_t)w))
                return -1;
            uint64_t idx = rd_le(m->p, w);
            m->p += w;
            if (memo_get(m, idx))
                return -1;
            break;
        }
        case 'c':
            if (op_global_text(m))
                return -1;
            break;
        case 0x93: { /* STACK_GLOBAL */
            pk_value *name = pop(m), *mod = name ? pop(m) : NULL;
            if (!mod)
                return -1;
            if (mod->type != PK_STR || name->type != PK_STR)
                return fail(m, "%s", "STACK_GLOBAL needs two strings");
            if (global(m, mod->u.str.s, name->u.str.s))
                return -1;
            break;
        }
        case 'R':
            if (op_reduce(m))
                return -1;
            break;
        case 'Q':
            if (op_persid(m))
                return -1;
            break;
        case 'b':
            if (op_build(m))
                return -1;
            break;
        case 's':
            if (!(v = pop(m)) || !(k = pop(m)) || !(x = top(m)) || dict_set(m, x, k, v))
                return -1;
            break;
        case 'u':
            if (pop_mark(m, &base))
                return -1;
            if (base <= floor_(m) || (m->sp - base) % 2)
                return fail(m, "%s", "SETITEMS without a dict or with an odd item count");
            for (size_t i = base; i < m->sp; i += 2)
                if (dict_set(m, m->stack[base - 1], m->stack[i], m->stack[i + 1]))
                    return -1;
            m->sp = base;
            break;
        case 'a':
            if (!(v = pop(m)) || !(x = top(m)))
                return -1;
            if (x->type != PK_LIST)
                return fail(m, "APPEND to a %s", pk_type_name(x->type));
            if (list_append(m, x, v))
                return -1;
            break;
        case 'e':
            if (pop_mark(m, &base))
                return -1;
            if (base <= floor_(m) || m->stack[base - 1]->type != PK_LIST)
                return fail(m, "%s", "APPENDS without a list");
            for (size_t i = base; i < m->sp; i++)
                if (list_append(m, m->stack[base - 1], m->stack[i]))
                    return -1;
            m->sp = base;
            break;
        default: {
            char hex[8];
            snprintf(hex, sizeof hex, "0x%02x", op);
            m->p--;
            return fail(m, "unsupported pickle opcode %s", hex);
        }
        }
    }
    return fail(m, "%s", "truncated pickle (no STOP)");
}

/* Walkers (lib/format/torchfile.c's flatten, pk_to_json) visit a shared object
 * once per reference, so memo GETs let a few hundred bytes nest a dict
 * referenced twice forty times over: 2^40 values to walk.  The tree the
 * walkers see is counted here, stopping as soon as it outgrows *left;
 * 1 too big, 2 too deep (a container holding itself is both). */
static int tree_check_(const pk_value *v, int depth, size_t *left)
{
    if (*left == 0)
        return 1;
    --*left;
    if (depth > PK_MAX_DEPTH)
        return 2;
    int rc = 0;
    if (v->type == PK_TUPLE || v->type == PK_LIST)
        for (size_t i = 0; i < v->u.seq.n && !rc; i++)
            rc = tree_check_(v->u.seq.items[i], depth + 1, left);
    else if (v->type == PK_DICT)
        for (size_t i = 0; i < v->u.dict.n && !rc; i++)
            if (!(rc = tree_check_(v->u.dict.keys[i], depth + 1, left)))
                rc = tree_check_(v->u.dict.vals[i], depth + 1, left);
    return rc;
}

static int check_tree(const struct vm *m)
{
    size_t bytes = (size_t)(m->p - m->start), left = PK_MAX_EXPANSION * bytes + 1024;
    switch (tree_check_(m->d->root, 0, &left)) {
    case 0: return 0;
    case 1:
        return err_set("%s: shared references expand the pickle's %zu bytes to more than %zu values",
                       m->label, bytes, PK_MAX_EXPANSION * bytes + 1024);
    default: return err_set("%s: nested deeper than %d levels", m->label, PK_MAX_DEPTH);
    }
}

pk_doc *pk_parse(const void *buf, size_t len, size_t *used, const char *label)
{
    struct vm m = {0};
    m.d = calloc(1, sizeof *m.d);
    if (!m.d) {
        err_set("out of memory");
        return NULL;
    }
    m.start = m.p = buf;
    m.end = m.p + len;
    m.label = label ? label : "pickle";
    m.memo_max = len > 4096 ? len : 4096;
    int rc = len ? run(&m) : err_set("%s: empty pickle", m.label);
    if (rc == 0)
        rc = check_tree(&m);
    if (rc == 0 && used)
        *used = (size_t)(m.p - m.start);
    free(m.stack);
    free(m.marks);
    free(m.memo);
    if (rc) {
        pk_free(m.d);
        return NULL;
    }
    return m.d;
}

// ----------------------------------------------------------------------------
// queries

const pk_value *pk_dict_get(const pk_value *v, const char *key)
{
    if (!v || v->type != PK_DICT)
        return NULL;
    for (size_t i = v->u.dict.n; i-- > 0;) {
        const pk_value *k = v->u.dict.keys[i];
        if (k->type == PK_STR && strcmp(k->u.str.s, key) == 0)
            return v->u.dict.vals[i];
    }
    return NULL;
}

const pk_value *pk_dict_get_int(const pk_value *v, int64_t key)
{
    if (!v || v->type != PK_DICT)
        return NULL;
    for (size_t i = v->u.dict.n; i-- > 0;) {
        const pk_value *k = v->u.dict.keys[i];
        if (k->type == PK_INT && k->u.i == key)
            return v->u.dict.vals[i];
    }
    return NULL;
}

bool pk_is_tensor_dict(const pk_value *v)
{
    if (!v || v->type != PK_DICT || v->u.dict.n == 0)
        return false;
    for (size_t i = 0; i < v->u.dict.n; i++)
        if (v->u.dict.keys[i]->type != PK_STR || v->u.dict.vals[i]->type != PK_TENSOR)
            return false;
    return true;
}
