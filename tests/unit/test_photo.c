/*
 * test_photo: which EXIF orientation lib/image/photo.c follows, as PIL 9.4's
 * ImageOps.exif_transpose and browsers do: a JPEG's first Exif APP1 segment
 * (a later one is ignored; an XMP APP1 is not EXIF), and a PNG's eXIf chunk.
 * (test_face.c checks the eight orientations and cut buffers.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "base/err.h"
#include "image/image.h"
#include "image/photo.h"

/* TIFF data (little-endian) whose IFD0 holds only the orientation, or no
 * entry at all when o is 0.  Returns its length. */
static size_t tiff_(uint8_t *t, int o)
{
    static const uint8_t head[8] = {'I', 'I', 42, 0, 8, 0, 0, 0};
    memcpy(t, head, 8);
    memset(t + 8, 0, 18);
    if (!o)
        return 8 + 2 + 4;
    t[8] = 1;                                 /* one entry */
    t[10] = 0x12, t[11] = 0x01;               /* tag 0x0112 */
    t[12] = 3, t[14] = 1, t[18] = (uint8_t)o; /* SHORT, count 1, value */
    return 8 + 2 + 12 + 4;
}

/* Append an APP1 segment: "Exif\0\0" and TIFF data of orientation o (0:
 * none), or an XMP packet when xmp. */
static size_t app1_(uint8_t *b, int o, int xmp)
{
    uint8_t p[128];
    size_t n;
    if (xmp) {
        static const char x[] = "http://ns.adobe.com/xap/1.0/\0<x:xmpmeta tiff:Orientation=\"3\"/>";
        memcpy(p, x, sizeof x);
        n = sizeof x;
    } else {
        memcpy(p, "Exif\0\0", 6);
        n = 6 + tiff_(p + 6, o);
    }
    b[0] = 0xFF, b[1] = 0xE1, b[2] = (uint8_t)((n + 2) >> 8), b[3] = (uint8_t)(n + 2);
    memcpy(b + 4, p, n);
    return n + 4;
}

static int test_jpeg_first_exif_app1(void)
{
    static const uint8_t sof[] = {0xFF, 0xC0, 0, 11, 8, 0, 10, 0, 10, 1, 1, 0x11, 0};
    struct {
        int first, second, xmp_first, want;
    } cases[] = {
        {6, 0, 0, 6},
        {0, 6, 0, 1}, /* the first Exif segment has no orientation: a second one is not consulted */
        {3, 6, 0, 3},
        {6, 0, 1, 6}, /* XMP first: the Exif segment after it is the first EXIF */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint8_t b[512];
        size_t n = 2;
        b[0] = 0xFF, b[1] = 0xD8;
        if (cases[i].xmp_first)
            n += app1_(b + n, 0, 1);
        n += app1_(b + n, cases[i].first, 0);
        if (cases[i].second)
            n += app1_(b + n, cases[i].second, 0);
        memcpy(b + n, sof, sizeof sof), n += sizeof sof;
        int got = photo_exif_orientation(b, n);
        EXPECT(got == cases[i].want, "case %zu: orientation %d, want %d", i, got, cases[i].want);
    }
    return 0;
}

/* A 4x2 RGB PNG with an eXIf chunk of orientation o after IHDR. */
static uint8_t *png_exif_(int o, size_t *len)
{
    image im = {4, 2, 3, malloc(4 * 2 * 3)};
    for (int i = 0; i < 24; i++)
        im.px[i] = (uint8_t)(10 * i);
    uint8_t *png, chunk[64];
    size_t n;
    if (image_encode_png(&im, &png, &n) != 0)
        return NULL;
    image_free(&im);
    size_t tn = tiff_(chunk + 8, o);
    check_put_be32(chunk, (uint32_t)tn);
    memcpy(chunk + 4, "eXIf", 4);
    check_put_be32(chunk + 8 + tn, check_crc32(chunk + 4, 4 + tn));
    size_t cn = 12 + tn, at = 8 + 25; /* after the signature and IHDR */
    uint8_t *out = malloc(n + cn);
    memcpy(out, png, at);
    memcpy(out + at, chunk, cn);
    memcpy(out + at + cn, png + at, n - at);
    free(png);
    *len = n + cn;
    return out;
}

static int test_png_exif(void)
{
    size_t n;
    uint8_t *png = png_exif_(6, &n);
    EXPECT(png, "%s", err_msg());
    EXPECT(photo_exif_orientation(png, n) == 6, "PNG eXIf orientation: %d", photo_exif_orientation(png, n));
    for (size_t k = 0; k < n; k++) { /* cut anywhere: never past the end */
        int got = photo_exif_orientation(png, k);
        EXPECT(got == 1 || got == 6, "cut at %zu: %d", k, got);
    }
    photo p;
    EXPECT(photo_decode(&p, png, n, 1000) == 0, "%s", err_msg());
    /* orientation 6: the stored 4x2 picture is shown turned to 2x4; the
     * top-left shown pixel is the stored bottom-left */
    EXPECT(p.orientation == 6 && p.im.w == 2 && p.im.h == 4, "orientation %d, %dx%d", p.orientation, p.im.w,
           p.im.h);
    EXPECT(p.im.px[0] == 120, "top-left %d", p.im.px[0]);
    photo_free(&p);
    free(png);
    png = png_exif_(0, &n);
    EXPECT(photo_exif_orientation(png, n) == 1, "an eXIf without orientation");
    free(png);
    return 0;
}

CHECK_MAIN(T(test_jpeg_first_exif_app1), T(test_png_exif))
