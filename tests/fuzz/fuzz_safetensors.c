/*
 * fuzz_safetensors: st_parse, the reader behind every checkpoint load, then
 * what the tools do with a file it accepts: every tensor by name (names are
 * unique), its data as f32, the metadata, and the network sizes translate
 * and cyclegan-step read off the first weights.
 */
#include <stdlib.h>
#include <string.h>

#include "nn/checkpoint.h"
#include "fuzz.h"
#include "format/safetensors.h"

static void tensors(const st_file *f, size_t size)
{
    size_t total = 0;
    for (int i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        FUZZ_ASSERT(st_get(f, t->name) == t);
        FUZZ_ASSERT(t->nbytes == (size_t)t->numel * st_dtype_size(t->dtype));
        total += t->nbytes;
        float *dst = malloc(t->numel ? (size_t)t->numel * sizeof *dst : 1);
        FUZZ_ASSERT(dst != NULL);
        if (st_read_f32(f, t->name, dst, t->shape, t->ndim) != 0)
            fuzz_refused("st_read_f32");
        free(dst);
    }
    FUZZ_ASSERT(total <= size); /* the tensors tile the data area */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_clear_msg();
    st_file *f = st_parse(data, size, "fuzz.safetensors");
    if (!f) {
        fuzz_refused("st_parse");
        return 0;
    }
    tensors(f, size);
    for (int i = 0; i < st_meta_count(f); i++)
        FUZZ_ASSERT(st_meta(f, st_meta_key(f, i)) != NULL);
    static const char *const nets[] = {"G.", "F.", "DX.", "DY.", ""};
    for (size_t i = 0; i < sizeof nets / sizeof *nets; i++) {
        struct gen_config gc;
        struct disc_config dc;
        if (!ckpt_has_net(f, nets[i]))
            continue;
        if (ckpt_gen_config(f, nets[i], &gc) != 0)
            fuzz_refused("ckpt_gen_config");
        if (ckpt_disc_config(f, nets[i], &dc) != 0)
            fuzz_refused("ckpt_disc_config");
    }
    st_free(f);
    return 0;
}
