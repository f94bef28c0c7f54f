/*
 * fuzz_pth: a checkpoint file as `ckpt import`/`ckpt info` open it
 * (tf_set_open: a torch zip, a legacy torch pickle stream or safetensors by
 * content), through libzip, the pickle reader and the tensor materialiser,
 * then every tensor's bytes read and every name looked up.
 */
#include "fuzz.h"
#include "format/torchfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_clear_msg();
    tf_set s;
    if (tf_set_open(fuzz_path(data, size), &s) != 0) {
        fuzz_refused("tf_set_open");
        return 0;
    }
    unsigned sum = 0;
    for (int i = 0; i < s.n; i++) {
        const tf_tensor *t = &s.t[i];
        FUZZ_ASSERT(tf_set_find(&s, t->name) != NULL);
        FUZZ_ASSERT(t->nbytes == (size_t)t->numel * st_dtype_size(t->dtype));
        const uint8_t *p = t->data;
        for (size_t b = 0; b < t->nbytes; b++)
            sum += p[b];
    }
    for (int i = 0; i < s.nmeta; i++)
        FUZZ_ASSERT(tf_set_get_meta(&s, s.meta_key[i]) != NULL);
    tf_set_free(&s);
    return (int)(sum & 0); /* the bytes were read (ASan checks each) */
}
