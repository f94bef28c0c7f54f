/*
 * grid: make_grid's layout of square tiles; see grid.h.
 */
#include "grid.h"

#include <stdlib.h>

#include "base/err.h"
#include "photo.h"

void grid_init(grid *g, int cols, int rows)
{
    *g = (grid){.cols = cols, .rows = rows};
}

int grid_put(grid *g, int col, int row, const float *chw, int h, int w)
{
    if (!g->s) {
        if (h != w)
            return err_set("grid tiles must be square, got %dx%d", w, h);
        g->img = (image){
            .w = g->cols * (h + GRID_PAD) + GRID_PAD, .h = g->rows * (h + GRID_PAD) + GRID_PAD, .c = 3};
        if (!(g->img.px = calloc((size_t)g->img.w * g->img.h, 3)))
            return err_set("out of memory");
        g->s = h;
    }
    if (h != g->s || w != g->s)
        return err_set("a %dx%d image in a grid of %d px tiles", w, h, g->s);
    if (col < 0 || col >= g->cols || row < 0 || row >= g->rows)
        return err_set("grid: no cell (%d, %d) in %d x %d", col, row, g->cols, g->rows);
    image tile = {0};
    if (image_from_chw_f32(&tile, chw, 3, h, w) != 0)
        return -1;
    int rc =
        image_blit(&g->img, &tile, GRID_PAD + col * (g->s + GRID_PAD), GRID_PAD + row * (g->s + GRID_PAD));
    image_free(&tile);
    if (rc != 0)
        return -1;
    if (col >= g->used)
        g->used = col + 1;
    return 0;
}

int grid_encode(const grid *g, bool jpeg, uint8_t **out, size_t *len)
{
    if (!g->used)
        return err_set("grid: no tiles");
    photo p = {.jpeg = jpeg};
    int rc = image_crop(&p.im, &g->img, 0, 0, g->used * (g->s + GRID_PAD) + GRID_PAD, g->img.h);
    if (rc == 0)
        rc = photo_encode(&p, jpeg, out, len);
    image_free(&p.im);
    return rc;
}

void grid_free(grid *g)
{
    if (g)
        image_free(&g->img);
}
