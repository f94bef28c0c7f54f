/*
 * photo: a whole photo for translate and serve, read and written so that the
 * result looks like the input: the EXIF orientation of a JPEG or PNG is applied
 * (the pixels come out upright, as viewers show them), grey photos are
 * written grey and a PNG's alpha channel is kept.
 *
 *   photo p;
 *   if (photo_decode(&p, bytes, n, FACE_MAX_PIXELS) == 0) {  // p.im: RGB or RGBA, upright
 *       ... edit p.im ...
 *       photo_encode(&p, jpeg, &out, &len);
 *   }
 *   photo_free(&p);
 *
 * Errors: -1 with err_msg().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"

typedef struct photo {
    image im;        /* c = 3, or 4 when the PNG has alpha; upright */
    bool jpeg;       /* the input was a JPEG (else a PNG) */
    bool grey;       /* the input had no colour */
    int orientation; /* the EXIF orientation applied, 1 (none) to 8 */
} photo;

/* The EXIF orientation tag (1..8), 1 when there is none: a JPEG's from its
 * first Exif APP1 segment (a later one is ignored, as PIL and browsers
 * ignore it), a PNG's from its eXIf chunk. */
int photo_exif_orientation(const uint8_t *bytes, size_t n);
/* out = in turned upright for EXIF orientation o (2..8 flip and/or turn;
 * 5..8 swap width and height). */
int photo_orient(image *out, const image *in, int o);
/* Refuses images over max_pixels from the header, before decoding. */
int photo_decode(photo *p, const uint8_t *bytes, size_t n, long max_pixels);
/* PNG (with alpha when p->im.c is 4) or JPEG (quality 95), grey when the
 * input was; the bytes are malloc'd. */
int photo_encode(const photo *p, bool jpeg, uint8_t **out, size_t *n);
void photo_free(photo *p); /* NULL-safe */

/* The format to write to path, from its extension (case-insensitive):
 * PHOTO_PNG for .png, PHOTO_JPEG for .jpg or .jpeg.  PHOTO_SAME (the
 * input's format) for stdout ("-"), a FIFO or device, or a name without an
 * extension.  -1 with err_msg() for an extension no encoder here writes. */
enum { PHOTO_SAME, PHOTO_PNG, PHOTO_JPEG };
int photo_out_format(const char *path);
/* Whether format fmt (PHOTO_*) writes a JPEG, for an input that was one
 * (in_jpeg) or not. */
bool photo_out_jpeg(int fmt, bool in_jpeg);
