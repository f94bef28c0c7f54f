/*
 * test_grid: lib/grid (make_grid's layout: tile places, borders, a
 * narrower grid for fewer inputs, refused sizes), the image_blit and
 * image_drop_alpha it and translate use, and lib/paste-file's names for
 * translate -o FOLDER.
 */
#include "base/err.h"
#include "image/grid.h"
#include "image/image.h"
#include "face/paste-file.h"

#include "check.h"

/* A [3,s,s] tile of one value v in [-1, 1]. */
static float *tile_(int s, float v)
{
    float *t = malloc((size_t)3 * s * s * sizeof *t);
    for (int i = 0; t && i < 3 * s * s; i++)
        t[i] = v;
    return t;
}

static int px_(const image *im, int x, int y)
{
    return im->px[((size_t)y * im->w + x) * im->c];
}

static int test_grid_layout(void)
{
    enum { S = 4 };
    float *white = tile_(S, 1), *grey = tile_(S, 0);
    grid g;
    grid_init(&g, 3, 2);
    EXPECT(grid_put(&g, 0, 0, white, S, S) == 0, "%s", err_msg());
    EXPECT(grid_put(&g, 1, 1, grey, S, S) == 0, "%s", err_msg());
    EXPECT(g.s == S && g.used == 2, "s %d used %d", g.s, g.used);
    EXPECT(g.img.w == 3 * (S + GRID_PAD) + GRID_PAD && g.img.h == 2 * (S + GRID_PAD) + GRID_PAD, "%dx%d",
           g.img.w, g.img.h);
    /* tiles at GRID_PAD + k * (S + GRID_PAD), black borders and empty cells */
    EXPECT(px_(&g.img, GRID_PAD, GRID_PAD) == 255 && px_(&g.img, GRID_PAD + S - 1, GRID_PAD + S - 1) == 255,
           "white tile");
    int x1 = GRID_PAD + S + GRID_PAD, y1 = x1;
    EXPECT(px_(&g.img, x1, y1) == 128, "grey tile: %d", px_(&g.img, x1, y1));
    EXPECT(px_(&g.img, 0, 0) == 0 && px_(&g.img, GRID_PAD + S, GRID_PAD) == 0, "borders");
    EXPECT(px_(&g.img, x1, GRID_PAD) == 0, "an empty cell is black");
    EXPECT(grid_put(&g, 3, 0, grey, S, S) == -1 && strstr(err_msg(), "no cell"), "outside: %s", err_msg());
    float *big = tile_(2 * S, 0);
    int rc = grid_put(&g, 2, 0, big, 2 * S, 2 * S);
    free(big);
    EXPECT(rc == -1 && strstr(err_msg(), "8x8 image in a grid of 4 px"), "%s", err_msg());
    /* encoded: cut after the used columns */
    uint8_t *png;
    size_t n;
    image back = {0};
    EXPECT(grid_encode(&g, false, &png, &n) == 0, "%s", err_msg());
    EXPECT(image_decode(&back, png, n) == 0, "%s", err_msg());
    EXPECT(back.w == 2 * (S + GRID_PAD) + GRID_PAD && back.h == g.img.h, "%dx%d", back.w, back.h);
    EXPECT(px_(&back, x1, y1) == 128, "decoded grey tile");
    image_free(&back);
    free(png);
    grid_free(&g);
    grid_init(&g, 2, 1);
    EXPECT(grid_put(&g, 0, 0, white, S, S - 1) == -1 && strstr(err_msg(), "must be square, got 3x4"), "%s",
           err_msg());
    EXPECT(grid_encode(&g, false, &png, &n) == -1, "an empty grid");
    grid_free(&g);
    free(white);
    free(grey);
    return 0;
}

static int test_blit_alpha(void)
{
    uint8_t d[4 * 3 * 3] = {0}, s[2 * 2 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    image dst = {.w = 4, .h = 3, .c = 3, .px = d}, src = {.w = 2, .h = 2, .c = 3, .px = s};
    EXPECT(image_blit(&dst, &src, 2, 1) == 0, "%s", err_msg());
    EXPECT(d[(1 * 4 + 2) * 3] == 1 && d[(2 * 4 + 3) * 3 + 2] == 12 && d[(1 * 4 + 1) * 3] == 0, "placed");
    EXPECT(image_blit(&dst, &src, 3, 1) == -1 && image_blit(&dst, &src, 0, 2) == -1, "must fit");
    EXPECT(image_blit(&dst, &src, -1, 0) == -1, "negative");
    uint8_t a[2 * 4] = {1, 2, 3, 200, 4, 5, 6, 100};
    image rgba = {.w = 2, .h = 1, .c = 4, .px = a};
    image_drop_alpha(&rgba);
    EXPECT(rgba.c == 3 && !memcmp(a, (uint8_t[]){1, 2, 3, 4, 5, 6}, 6), "RGBA -> RGB");
    image_drop_alpha(&rgba);
    EXPECT(rgba.c == 3 && a[3] == 4, "RGB stays");
    return 0;
}

static int test_file_names(void)
{
    struct {
        const char *path, *tag;
        bool jpeg;
        const char *want;
    } cases[] = {
        {"in/25_0_0_20170101.jpg.chip.jpg", "young2old", true, "out/25_0_0_20170101_young2old.jpg"},
        {"me.jpeg", "old2young", true, "out/me_old2young.jpg"},
        {"/a/b/photo.PNG", "young2old", false, "out/photo_young2old.png"},
        {"noext", "young2old", false, "out/noext_young2old.png"},
        {".hidden", "young2old", false, "out/.hidden_young2old.png"},
        {"x.tar.png", "young2old", false, "out/x.tar_young2old.png"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[256];
        paste_file_name(out, sizeof out, "out", cases[i].path, cases[i].tag, cases[i].jpeg);
        EXPECT(strcmp(out, cases[i].want) == 0, "%s: got %s, want %s", cases[i].path, out, cases[i].want);
    }
    return 0;
}

CHECK_MAIN(T(test_grid_layout), T(test_blit_alpha), T(test_file_names))
