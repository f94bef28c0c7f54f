/*
 * fuzz_image: the JPEG and PNG decoders (image_decode, what utk-split, aug
 * and serve run on every file and upload) and the header probe serve uses to
 * refuse large images before decoding: when both accept the bytes they must
 * agree on the size, and no decoded image may exceed IMAGE_MAX_PIXELS.
 * Images the probe sizes above FUZZ_MAX_PIXELS are not decoded (below).
 */
#include <stdlib.h>

#include "fuzz.h"
#include "image-probe.h"
#include "image.h"

#define FUZZ_MAX_PIXELS (1L << 16) /* 256x256: UTKFace faces are 200x200 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_clear_msg();
    int pw = 0, ph = 0;
    const char *fmt = NULL;
    int probed = image_probe(data, size, &pw, &ph, &fmt);
    if (probed != 0)
        fuzz_refused("image_probe");
    /* Decoding is bounded by IMAGE_MAX_PIXELS, not by the input: a 200-byte
     * JPEG may fill 8M grey pixels (as PIL does), 0.1 s each time.  Large
     * headers are left to the probe, as serve does, so the fuzzer's time
     * goes to the parsing. */
    if (probed == 0 && (long)pw * ph > FUZZ_MAX_PIXELS)
        return 0;
    image im;
    if (image_decode(&im, data, size) != 0) {
        fuzz_refused("image_decode");
        return 0;
    }
    FUZZ_ASSERT(im.c == 3 && im.w > 0 && im.h > 0 && (long)im.w * im.h <= IMAGE_MAX_PIXELS);
    if (probed == 0)
        FUZZ_ASSERT(pw == im.w && ph == im.h);
    unsigned sum = 0;
    for (size_t i = 0; i < (size_t)im.w * im.h * 3; i += 4093)
        sum += im.px[i];
    image_free(&im);
    return (int)(sum & 0);
}
