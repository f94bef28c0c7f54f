/*
 * fuzz_image: the JPEG and PNG decoders (image_decode, what utk-split, aug
 * and serve run on every file and upload) and the header probe serve uses to
 * refuse large images before decoding: when both accept the bytes they must
 * agree on the size, and no decoded image may exceed the limit it was given.
 * Every other input also goes through the reduced decode aug and fid use
 * (image_decode_need with a minimum size: libjpeg's DCT scaling), and every
 * other pair of inputs through tb-log's whole-file check.
 * Images the probe sizes above FUZZ_MAX_PIXELS are not decoded (below).
 */
#include <stdlib.h>

#include "fuzz.h"
#include "image/image-probe.h"
#include "image/image.h"

/* 4 Mpx: past a megapixel, so that the fuzzer reaches the inputs whose
 * cost is not in their bytes (a small file declaring a large image, scan
 * after empty scan); the decoder must refuse those cheaply.  A JPEG's
 * decoding costs in proportion to its size (image-io.c), so large sizes no
 * longer cost the fuzzer time on every input. */
#define FUZZ_MAX_PIXELS (1L << 22)
#define FUZZ_MIN_SIDE 64 /* the reduced decode: at least this, when the image is larger */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_clear_msg();
    int pw = 0, ph = 0;
    const char *fmt = NULL;
    int probed = image_probe(data, size, &pw, &ph, &fmt);
    if (probed != 0)
        fuzz_refused("image_probe");
    /* The pixel limit is the decoder's own: the probe only skips what it
     * would refuse anyway. */
    if (probed == 0 && (long)pw * ph > FUZZ_MAX_PIXELS)
        return 0;
    int reduced = size & 1, m = reduced ? FUZZ_MIN_SIDE : 0;
    image_need need = {.max_pixels = FUZZ_MAX_PIXELS, .min_w = m, .min_h = m, .whole = (size >> 1) & 1};
    image im;
    if (image_decode_need(&im, data, size, &need) != 0) {
        fuzz_refused("image_decode");
        return 0;
    }
    FUZZ_ASSERT(im.c == 3 && im.w > 0 && im.h > 0 && (long)im.w * im.h <= FUZZ_MAX_PIXELS);
    if (probed == 0 && !reduced)
        FUZZ_ASSERT(pw == im.w && ph == im.h);
    if (probed == 0 && reduced) /* scaled down, never below twice the minimum (or the image) */
        FUZZ_ASSERT(im.w <= pw && im.h <= ph && (im.w >= 2 * FUZZ_MIN_SIDE || im.w == pw) &&
                    (im.h >= 2 * FUZZ_MIN_SIDE || im.h == ph));
    unsigned sum = 0;
    for (size_t i = 0; i < (size_t)im.w * im.h * 3; i += 4093)
        sum += im.px[i];
    image_free(&im);
    return (int)(sum & 0);
}
