/*
 * torchfile-impl.h: what the two halves of torchfile (torchfile.c, the
 * tf_set and the reader; torchfile-write.c, the .pth writer) share.
 * Private to lib/format/torchfile*.c.
 */
#pragma once

#include <stddef.h>

/* Make room for element n of the array *p of *cap elements of elem bytes,
 * doubling it (32 at first); -1 with err_msg() when out of memory. */
int tf_grow(void **p, int *cap, int n, size_t elem);
