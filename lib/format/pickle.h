/*
 * pickle: a data reader (not an interpreter) for the Python pickles that
 * torch.save writes, and a small writer for the same subset.
 *
 * Reading runs the pickle stack machine over a byte buffer and builds a tree
 * of pk_value nodes (None, bools, ints, floats, strings, tuples, lists, dicts,
 * torch storages and tensors).  Nothing is ever executed: GLOBAL may only name
 *
 *     collections.OrderedDict           REDUCE with () -> an empty dict
 *     torch._utils._rebuild_tensor_v2   REDUCE -> PK_TENSOR (storage, offset, size,
 *                                       stride, requires_grad, hooks[, metadata])
 *     torch._utils._rebuild_tensor      the same without requires_grad/hooks (old files)
 *     torch._utils._rebuild_parameter   REDUCE (tensor, requires_grad, hooks) -> the tensor
 *     torch.<X>Storage                  only inside a persistent id (below); X in
 *                                       Float Double Half BFloat16 Long Int Short
 *                                       Char Byte Bool ComplexFloat ComplexDouble
 *
 * and any other global is rejected with "forbidden global 'os.system'".
 * BINPERSID accepts only torch's storage ids, ('storage', torch.XStorage,
 * key:str, location:str, numel:int) and the legacy 6-tuple with a trailing
 * None, and yields a PK_STORAGE.  BUILD on a dict or tensor ignores the state
 * (state_dict's `_metadata`).
 *
 * Opcodes (protocol 2, plus the protocol 3/4 ones a newer pickler may emit):
 *     80 PROTO n          } EMPTY_DICT      ] EMPTY_LIST      ) EMPTY_TUPLE
 *     ( MARK              t TUPLE           85/86/87 TUPLE1/2/3
 *     X BINUNICODE u32    8C SHORT_BINUNICODE u8    B/C BINBYTES u32 / SHORT_BINBYTES u8
 *     K BININT1 u8        M BININT2 u16     J BININT i32      8A LONG1 n + n bytes
 *     G BINFLOAT (big-endian double)        88/89 NEWTRUE/NEWFALSE   N NONE
 *     q/r BINPUT u8/u32   h/j BINGET u8/u32 94 MEMOIZE          95 FRAME u64 (skipped)
 *     c GLOBAL mod\nname\n                  93 STACK_GLOBAL   R REDUCE   Q BINPERSID
 *     s SETITEM  u SETITEMS  a APPEND  e APPENDS  b BUILD  0 POP  1 POP_MARK  2 DUP
 *     . STOP
 * Anything else is an error naming the opcode and its offset.
 *
 * Safety: every read is bounds-checked, so a truncated or hostile pickle ends
 * in an error, never a crash.  Memory is bounded: all nodes live in one arena
 * per document, capped at PK_MAX_BYTES (and in practice about 64 bytes per
 * input byte); memo indices must be below max(4096, input length).  The tree
 * may share nodes (memo GETs), but walking it is bounded too: a document is
 * refused when, walked as a tree (a shared node once per reference), it is
 * deeper than PK_MAX_DEPTH (a list appended to itself is infinitely deep) or
 * has more than PK_MAX_EXPANSION values per pickle byte (nested shared dicts
 * would otherwise make 2^40 values of a kilobyte).  Walkers may then recurse
 * freely.  Dicts keep insertion order and repeated keys (a lookup returns the
 * last).
 *
 * Usage:
 *     size_t used;
 *     pk_doc *d = pk_parse(buf, len, &used, "best/data.pkl");
 *     if (!d) die("%s", err_msg());
 *     const pk_value *g = pk_dict_get(pk_root(d), "G");
 *     pk_free(d);
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PK_MAX_DIMS      8            /* tensors with more dimensions are rejected */
#define PK_MAX_DEPTH     64           /* nesting limit of every walker and of a document */
#define PK_MAX_EXPANSION 16           /* values a document may expand to per byte (shared references) */
#define PK_MAX_BYTES     (1ull << 30) /* arena limit per document */

typedef enum pk_type {
    PK_NONE,
    PK_BOOL,
    PK_INT,    /* fits int64 */
    PK_BIGINT, /* LONG1 wider than int64: raw little-endian two's complement in str */
    PK_FLOAT,
    PK_STR, /* UTF-8 as stored (not validated), NUL-terminated copy */
    PK_BYTES,
    PK_TUPLE,
    PK_LIST,
    PK_DICT,
    PK_GLOBAL,  /* a whitelisted class/function reference */
    PK_STORAGE, /* a torch storage named by a persistent id */
    PK_TENSOR
} pk_type;

/* Storage element types: torch.<name>Storage. */
typedef enum pk_dtype {
    PK_F32,
    PK_F64,
    PK_F16,
    PK_BF16,
    PK_I64,
    PK_I32,
    PK_I16,
    PK_I8,
    PK_U8,
    PK_BOOLT,
    PK_C64,
    PK_C128,
    PK_DTYPE_COUNT
} pk_dtype;

/* Which whitelisted global a PK_GLOBAL is. */
typedef enum pk_global {
    PK_G_ORDERED_DICT,
    PK_G_REBUILD_TENSOR_V2,
    PK_G_REBUILD_TENSOR,
    PK_G_REBUILD_PARAMETER,
    PK_G_STORAGE /* torch.XStorage: dtype in u.global.dtype */
} pk_global;

typedef struct pk_value pk_value;
struct pk_value {
    pk_type type;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *s; /* NUL-terminated */
            size_t len;
        } str; /* PK_STR, PK_BYTES, PK_BIGINT */
        struct {
            pk_value **items;
            size_t n, cap;
        } seq; /* PK_TUPLE, PK_LIST */
        struct {
            pk_value **keys, **vals;
            size_t n, cap;
        } dict;
        struct {
            pk_global which;
            pk_dtype dtype; /* PK_G_STORAGE only */
        } global;
        struct {
            pk_dtype dtype;
            const char *key;      /* member data/<key> (zip) or the legacy key */
            const char *location; /* "cpu", "cuda:0", ... */
            int64_t numel;        /* elements of dtype */
        } storage;
        struct {
            const pk_value *storage; /* PK_STORAGE */
            int64_t offset;          /* elements */
            int ndim;
            int64_t *shape, *stride; /* ndim each, elements */
            bool requires_grad;
        } tensor;
    } u;
};

typedef struct pk_doc pk_doc;

// ----------------------------------------------------------------------------
// reading

/* Run the pickle in buf[0..len) up to its STOP.  *used (may be NULL) gets the
 * number of bytes consumed, so consecutive pickles (the legacy torch format)
 * can be read one after another.  label names the source in messages
 * ("best/data.pkl: offset 123: forbidden global 'os.system'").  NULL + err_msg
 * on error.  The caller frees with pk_free; every pk_value lives as long as
 * the document. */
pk_doc *pk_parse(const void *buf, size_t len, size_t *used, const char *label);
void pk_free(pk_doc *d); /* NULL-safe */
const pk_value *pk_root(const pk_doc *d);
/* Every storage the pickle named (one per BINPERSID, so a key may repeat). */
size_t pk_storage_count(const pk_doc *d);
const pk_value *pk_storage_at(const pk_doc *d, size_t i);

/* Dict lookups (NULL when v is not a dict or the key is absent). */
const pk_value *pk_dict_get(const pk_value *v, const char *key);
const pk_value *pk_dict_get_int(const pk_value *v, int64_t key);
/* 1 if v is a dict whose values are all tensors (a state_dict); an empty dict is not. */
bool pk_is_tensor_dict(const pk_value *v);

/* "float32", "bfloat16", ...; element size in bytes. */
const char *pk_dtype_name(pk_dtype t);
size_t pk_dtype_size(pk_dtype t);
const char *pk_type_name(pk_type t);

/* v as compact JSON (None -> null, tuples -> arrays, dict keys as strings,
 * floats "%.17g", inf/nan -> "Infinity"/"NaN" as Python's json writes them).
 * Tensors and storages are rejected ("cannot be written as JSON").  Depth is
 * limited to PK_MAX_DEPTH and the text to max_len bytes.  Returns a malloc'd
 * string the caller frees, or NULL + err_msg. */
char *pk_to_json(const pk_value *v, size_t max_len);

// ----------------------------------------------------------------------------
// writing (protocol 2, the opcodes torch.save uses; no memo)

typedef struct pk_writer {
    uint8_t *buf;
    size_t len, cap;
    int failed; /* set on out of memory; checked by pkw_finish */
} pk_writer;

void pkw_init(pk_writer *w); /* writes PROTO 2 */
void pkw_destroy(pk_writer *w);
void pkw_op(pk_writer *w,
            uint8_t op); /* a bare opcode: '}', ']', ')', '(', 't', 's', 'u', 'a', 'e', 'R', 'Q', 0x85.. */
void pkw_int(pk_writer *w, int64_t v);  /* BININT1/2, BININT or LONG1 */
void pkw_float(pk_writer *w, double v); /* BINFLOAT */
void pkw_bool(pk_writer *w, bool v);
void pkw_none(pk_writer *w);
void pkw_str(pk_writer *w, const char *s, size_t n); /* BINUNICODE */
void pkw_cstr(pk_writer *w, const char *s);
void pkw_global(pk_writer *w, const char *module, const char *name);
/* Append STOP; 0, or -1 (err_msg) if anything failed on the way. */
int pkw_finish(pk_writer *w);
