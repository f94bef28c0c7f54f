/*
 * grid: a sample grid as torchvision's make_grid draws it: square tiles of
 * one size in columns and rows, 2-pixel black borders.  translate puts the
 * inputs on the top row and each generator's outputs in a row below.
 *
 *   grid g;
 *   grid_init(&g, cols, rows);
 *   grid_put(&g, col, row, chw, h, w);    // the first tile sets the size
 *   ...
 *   grid_encode(&g, jpeg, &bytes, &len);  // the columns used, PNG or JPEG
 *   grid_free(&g);
 *
 * Errors: -1 with err_msg().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"

#define GRID_PAD 2

typedef struct grid {
    int cols, rows; /* as laid out */
    int s;          /* the tile size: 0 until the first tile */
    int used;       /* columns in use: 1 + the rightmost tile's */
    image img;      /* owned: cols x rows tiles, black where none is */
} grid;

void grid_init(grid *g, int cols, int rows);
/* Copy a CHW float tile ([3,h,w] in [-1, 1]) into its cell.  The first
 * tile must be square and sets the size (allocating the image); every
 * other must have it. */
int grid_put(grid *g, int col, int row, const float *chw, int h, int w);
/* The grid cut after its used columns (fewer inputs than columns: a
 * narrower grid), as PNG or JPEG into *out (malloc'd). */
int grid_encode(const grid *g, bool jpeg, uint8_t **out, size_t *len);
void grid_free(grid *g); /* NULL-safe */
