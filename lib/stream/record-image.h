/*
 * record-image: the pixels of an `image` record (its stored JPEG or PNG
 * bytes decoded), shared by every tool that accepts image records.
 */
#pragma once

#include "image/image.h"
#include "record.h"

/* Decode r's "bytes" into im (RGB, owned by the caller: image_free).
 * -1 with err_msg() when the record has no bytes or they do not decode. */
int record_decode_image(const record *r, image *im);
/* The same within what the caller needs (image_need: a pixel limit, a
 * reduced JPEG decode; NULL: full size up to IMAGE_MAX_PIXELS). */
int record_decode_image_need(const record *r, image *im, const image_need *need);
