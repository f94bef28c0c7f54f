/*
 * pickle-write: the pk_writer of pickle.h, a protocol-2 pickle (the opcodes
 * torch.save uses, no memo) built in a growable buffer: ints, floats, bools,
 * None, strings, globals and raw opcodes.  The reader is pickle.c, the JSON
 * view of parsed values pickle-json.c.
 */
#include "pickle.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

static void w_put(pk_writer *w, const void *p, size_t n)
{
    if (w->failed)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *more = realloc(w->buf, cap);
        if (!more) {
            w->failed = 1;
            return;
        }
        w->buf = more;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void w_le(pk_writer *w, uint64_t v, int n)
{
    uint8_t b[8];
    for (int i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    w_put(w, b, (size_t)n);
}

void pkw_init(pk_writer *w)
{
    memset(w, 0, sizeof *w);
    w_put(w, "\x80\x02", 2);
}

void pkw_destroy(pk_writer *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}

void pkw_op(pk_writer *w, uint8_t op)
{
    w_put(w, &op, 1);
}

void pkw_int(pk_writer *w, int64_t v)
{
    if (v >= 0 && v < 256) {
        pkw_op(w, 'K');
        w_le(w, (uint64_t)v, 1);
    } else if (v >= 0 && v < 65536) {
        pkw_op(w, 'M');
        w_le(w, (uint64_t)v, 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        pkw_op(w, 'J');
        w_le(w, (uint64_t)(uint32_t)(int32_t)v, 4);
    } else {
        pkw_op(w, 0x8A); /* LONG1, 8 bytes two's complement (Python accepts non-minimal) */
        pkw_op(w, 8);
        w_le(w, (uint64_t)v, 8);
    }
}

void pkw_float(pk_writer *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    uint8_t b[9] = {'G'};
    for (int i = 0; i < 8; i++)
        b[1 + i] = (uint8_t)(u >> (56 - 8 * i));
    w_put(w, b, 9);
}

void pkw_bool(pk_writer *w, bool v)
{
    pkw_op(w, v ? 0x88 : 0x89);
}
void pkw_none(pk_writer *w)
{
    pkw_op(w, 'N');
}

void pkw_str(pk_writer *w, const char *s, size_t n)
{
    pkw_op(w, 'X');
    w_le(w, n, 4);
    w_put(w, s, n);
}

void pkw_cstr(pk_writer *w, const char *s)
{
    pkw_str(w, s, strlen(s));
}

void pkw_global(pk_writer *w, const char *module, const char *name)
{
    pkw_op(w, 'c');
    w_put(w, module, strlen(module));
    w_put(w, "\n", 1);
    w_put(w, name, strlen(name));
    w_put(w, "\n", 1);
}

int pkw_finish(pk_writer *w)
{
    pkw_op(w, '.');
    return w->failed ? err_set("out of memory writing a pickle") : 0;
}
