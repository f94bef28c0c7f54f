/*
 * record-image: decoding the file bytes an image record carries.
 */
#include "record-image.h"

#include "base/err.h"

int record_decode_image_need(const record *r, image *im, const image_need *need)
{
    const uint8_t *b;
    size_t n;
    if (record_get_bin(r, "bytes", &b, &n) != 0)
        return err_set("image record without binary 'bytes'");
    return image_decode_need(im, b, n, need);
}

int record_decode_image(const record *r, image *im)
{
    return record_decode_image_need(r, im, NULL);
}
