/*
 * image-ops-impl.h: what the two halves of image-ops (image-ops.c, crops,
 * flips, rotation and tensor conversion; image-resize.c, PIL's resampling)
 * share.  Private to lib/image/image-ops.c and image-resize.c.
 */
#pragma once

#include "image.h"

/* out gets a new w x h image of c channels (uninitialised pixels); -1 with
 * err_set when out of memory. */
int img_alloc(image *out, int w, int h, int c);
/* -1 with err_set("OP: invalid input image") unless in is a usable image. */
int img_check_in(const image *in, const char *op);
/* out gets a copy of in; -1 with err_set on failure. */
int img_copy(image *out, const image *in);
/* Whether the CPU has AVX-512 F, BW and VL (asked once). */
int img_avx512bw(void);
