/*
 * fuzz_stream: a record stream file as every tool reads it (stream_in_next:
 * msgpack maps, `end` records, truncation), then each record the way the
 * tools look at it: typed getters on every key, the tensor view and its
 * conversion to f32, JSON output, and packing it again, which must decode
 * to the same keys (filters pass records through).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "stream/record.h"
#include "stream/stream.h"

static void getters(const record *r)
{
    for (int i = 0; i < r->n; i++) {
        const char *k = r->fields[i].key;
        int64_t iv;
        double fv;
        const uint8_t *bin;
        size_t len;
        const int64_t *ints;
        int n;
        FUZZ_ASSERT(record_find(r, k) != NULL);
        (void)record_get_str(r, k);
        (void)record_get_int(r, k, &iv);
        (void)record_get_float(r, k, &fv);
        if (record_get_bin(r, k, &bin, &len) == 0 && len)
            FUZZ_ASSERT(bin != NULL);
        if (record_get_ints(r, k, &ints, &n) == 0)
            FUZZ_ASSERT(n >= 0 && (n == 0 || ints != NULL));
    }
    (void)record_kind(r);
    (void)record_pairs_ahead(r);
}

static void tensor(const record *r)
{
    tensor_view v;
    if (record_tensor_view(r, &v) != 0) {
        fuzz_refused("record_tensor_view");
        return;
    }
    FUZZ_ASSERT(v.c > 0 && v.h > 0 && v.w > 0);
    size_t n = (size_t)(v.c * v.h * v.w);
    float *f = malloc(n * sizeof *f);
    FUZZ_ASSERT(f != NULL);
    tensor_view_to_f32(&v, f);
    free(f);
}

/* Pack r and decode the bytes again: the same keys in the same order. */
static void repack(const record *r)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    FUZZ_ASSERT(record_pack(r, &pk) == 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    FUZZ_ASSERT(msgpack_unpack_next(&u, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS && off == sb.size);
    record back;
    record_init(&back);
    FUZZ_ASSERT(record_take_unpacked(&back, &u, NULL) == 0);
    FUZZ_ASSERT(back.n == r->n);
    for (int i = 0; i < r->n; i++)
        FUZZ_ASSERT(strcmp(back.fields[i].key, r->fields[i].key) == 0 &&
                    back.fields[i].type == r->fields[i].type);
    record_clear(&back);
    msgpack_sbuffer_destroy(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    if (!devnull)
        FUZZ_ASSERT((devnull = fopen("/dev/null", "w")) != NULL);
    fuzz_clear_msg();
    stream_in *in = stream_in_open(fuzz_path(data, size));
    FUZZ_ASSERT(in != NULL);
    record r;
    record_init(&r);
    int rc;
    while ((rc = stream_in_next(in, &r)) == 1) {
        getters(&r);
        if (strcmp(record_kind(&r), "tensor") == 0)
            tensor(&r);
        (void)record_write_json(&r, devnull);
        repack(&r);
    }
    if (rc < 0)
        fuzz_refused("stream_in_next");
    record_clear(&r);
    stream_in_free(in);
    return 0;
}
