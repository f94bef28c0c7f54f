/*
 * fuzz_npz: pytorch-fid statistics as `fid` loads them: the bytes as one
 * .npy image (npy_parse) and as an .npz archive (npz_read through libzip)
 * asked for its "mu" and "sigma" members.
 */
#include "fuzz.h"
#include "format/npy.h"

static void check(int rc, const struct npy_array *a, const char *what)
{
    if (rc != 0) {
        fuzz_refused(what);
        return;
    }
    FUZZ_ASSERT(a->ndim >= 0 && a->ndim <= NPY_MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < a->ndim; i++)
        n *= a->shape[i];
    FUZZ_ASSERT(n == a->numel);
    double sum = 0;
    for (int64_t i = 0; i < a->numel; i++)
        sum += a->data[i];
    (void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_clear_msg();
    struct npy_array a;
    check(npy_parse(&a, data, size, "fuzz.npy"), &a, "npy_parse");
    npy_array_free(&a);
    const char *path = fuzz_path(data, size);
    static const char *const keys[] = {"mu", "sigma"};
    for (int k = 0; k < 2; k++) {
        check(npz_read(path, keys[k], &a), &a, "npz_read");
        npy_array_free(&a);
    }
    return 0;
}
