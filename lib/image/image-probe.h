/*
 * image-probe: the width and height of a JPEG or PNG read from its header
 * alone, without decoding (or allocating) any pixels.  serve uses it to
 * refuse images over its pixel limit before image_decode() runs.
 *
 *   int w, h;
 *   const char *fmt;
 *   if (image_probe(bytes, n, &w, &h, &fmt) == 0)  // "JPEG" or "PNG"
 *       ...
 *
 * PNG: the IHDR chunk that must follow the signature.  JPEG: the segments
 * after SOI are walked (each length-checked) up to the first SOFn frame
 * header.  -1 with err_msg() when the bytes are neither, the header is cut
 * short, or a dimension is zero.  A good header does not promise a good
 * image: image_decode() still checks everything after it.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

int image_probe(const uint8_t *bytes, size_t n, int *w, int *h, const char **fmt);
