/*
 * fuzz_pickle: the pickle reader on its own (the stack machine behind every
 * .pth: opcodes, memo, whitelisted globals, persistent ids), pickles read one
 * after another as the legacy torch format stores them, then every node of
 * each document walked as lib/format/torchfile.c walks it, and written as JSON as
 * metadata is.
 */
#include <stdlib.h>

#include "fuzz.h"
#include "format/pickle.h"

static void walk(const pk_value *v, int depth)
{
    FUZZ_ASSERT(v != NULL && depth <= PK_MAX_DEPTH + 1);
    switch (v->type) {
    case PK_TUPLE:
    case PK_LIST:
        for (size_t i = 0; i < v->u.seq.n; i++)
            walk(v->u.seq.items[i], depth + 1);
        break;
    case PK_DICT:
        for (size_t i = 0; i < v->u.dict.n; i++) {
            walk(v->u.dict.keys[i], depth + 1);
            walk(v->u.dict.vals[i], depth + 1);
        }
        break;
    case PK_TENSOR:
        FUZZ_ASSERT(v->u.tensor.ndim >= 0 && v->u.tensor.ndim <= PK_MAX_DIMS);
        FUZZ_ASSERT(v->u.tensor.storage && v->u.tensor.storage->type == PK_STORAGE);
        for (int i = 0; i < v->u.tensor.ndim; i++)
            (void)(v->u.tensor.shape[i] + v->u.tensor.stride[i]);
        break;
    case PK_STR:
    case PK_BYTES:
    case PK_BIGINT: FUZZ_ASSERT(v->u.str.s != NULL && v->u.str.s[v->u.str.len] == 0); break;
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_clear_msg();
    for (size_t off = 0; off < size;) {
        size_t used = 0;
        pk_doc *d = pk_parse(data + off, size - off, &used, "fuzz/data.pkl");
        if (!d) {
            fuzz_refused("pk_parse");
            break;
        }
        FUZZ_ASSERT(used > 0 && used <= size - off);
        off += used;
        const pk_value *root = pk_root(d);
        walk(root, 0);
        for (size_t i = 0; i < pk_storage_count(d); i++)
            FUZZ_ASSERT(pk_storage_at(d, i)->type == PK_STORAGE);
        (void)pk_is_tensor_dict(root);
        (void)pk_dict_get(root, "state_dict");
        (void)pk_dict_get_int(root, 0);
        char *json = pk_to_json(root, 1 << 16);
        if (!json)
            fuzz_refused("pk_to_json");
        free(json);
        pk_free(d);
    }
    return 0;
}
