/*
 * photo: decode and encode a whole photo for translate (EXIF orientation of a
 * JPEG or PNG, grey, alpha); the codecs themselves are image-io.c's.
 */
#include "photo.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/err.h"
#include "image-probe.h"

static unsigned rd16_(const uint8_t *p, int le)
{
    return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1];
}
static uint32_t rd32_(const uint8_t *p, int le)
{
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Orientation from EXIF's TIFF data (a JPEG's APP1 after "Exif\0\0", a
 * PNG's eXIf chunk), 0 when none. */
static int exif_tiff_(const uint8_t *t, size_t tn)
{
    if (tn < 8)
        return 0;
    int le;
    if (memcmp(t, "II", 2) == 0)
        le = 1;
    else if (memcmp(t, "MM", 2) == 0)
        le = 0;
    else
        return 0;
    if (rd16_(t + 2, le) != 42)
        return 0;
    uint32_t ifd = rd32_(t + 4, le);
    if (ifd > tn || tn - ifd < 2)
        return 0;
    unsigned count = rd16_(t + ifd, le);
    for (unsigned i = 0; i < count; i++) {
        size_t e = ifd + 2 + (size_t)12 * i;
        if (e + 12 > tn)
            return 0;
        if (rd16_(t + e, le) == 0x0112 && rd16_(t + e + 2, le) == 3) {
            unsigned o = rd16_(t + e + 8, le);
            return o >= 1 && o <= 8 ? (int)o : 0;
        }
    }
    return 0;
}

/* Walk a JPEG's segments up to the first frame header: the EXIF
 * orientation and the number of components. */
static void jpeg_walk_(const uint8_t *b, size_t n, int *orientation, int *components)
{
    *orientation = 1, *components = 3;
    size_t i = 2;
    int found_exif = 0;
    while (i + 4 <= n) {
        if (b[i] != 0xFF)
            return;
        uint8_t m = b[i + 1];
        if (m == 0xFF) {
            i++;
            continue;
        }
        if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) {
            i += 2;
            continue;
        }
        if (m == 0xD9 || m == 0xDA)
            return;
        size_t len = rd16_(b + i + 2, 0);
        if (len < 2 || i + 2 + len > n)
            return;
        const uint8_t *seg = b + i + 4;
        size_t sn = len - 2;
        /* The first Exif APP1 decides, with or without an orientation, as
         * in PIL and browsers; other APP1s (XMP) are not EXIF. */
        if (m == 0xE1 && !found_exif && sn >= 6 && memcmp(seg, "Exif\0\0", 6) == 0) {
            int o = exif_tiff_(seg + 6, sn - 6);
            found_exif = 1;
            if (o)
                *orientation = o;
        }
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            if (sn >= 6)
                *components = seg[5];
            return;
        }
        i += 2 + len;
    }
}

/* A PNG's EXIF orientation: its eXIf chunk (TIFF data), which the PNG
 * extensions place before the image data; the chunks are walked, each
 * length-checked, up to the first IDAT. */
static int png_orientation_(const uint8_t *b, size_t n)
{
    size_t i = 8;
    while (i + 12 <= n) {
        uint32_t len = rd32_(b + i, 0);
        const uint8_t *type = b + i + 4;
        if (len > n - i - 12 || memcmp(type, "IDAT", 4) == 0 || memcmp(type, "IEND", 4) == 0)
            return 1;
        if (memcmp(type, "eXIf", 4) == 0) {
            int o = exif_tiff_(b + i + 8, len);
            return o ? o : 1;
        }
        i += 12 + (size_t)len;
    }
    return 1;
}

int photo_exif_orientation(const uint8_t *bytes, size_t n)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 8 && memcmp(bytes, png_sig, 8) == 0)
        return png_orientation_(bytes, n);
    if (n < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8)
        return 1;
    int o, c;
    jpeg_walk_(bytes, n, &o, &c);
    return o;
}

int photo_orient(image *out, const image *in, int o)
{
    if (!in || !in->px || in->c < 1 || in->c > 4 || o < 1 || o > 8)
        return err_set("photo_orient: invalid input");
    int W = in->w, H = in->h, C = in->c;
    int ow = o >= 5 ? H : W, oh = o >= 5 ? W : H;
    out->w = ow, out->h = oh, out->c = C;
    if (!(out->px = malloc((size_t)W * H * C)))
        return err_set("photo: out of memory");
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            int sx, sy;
            switch (o) {
            case 2: sx = W - 1 - x, sy = y; break;
            case 3: sx = W - 1 - x, sy = H - 1 - y; break;
            case 4: sx = x, sy = H - 1 - y; break;
            case 5: sx = y, sy = x; break;
            case 6: sx = y, sy = H - 1 - x; break;
            case 7: sx = W - 1 - y, sy = H - 1 - x; break;
            case 8: sx = W - 1 - y, sy = x; break;
            default: sx = x, sy = y;
            }
            memcpy(out->px + ((size_t)y * ow + x) * C, in->px + ((size_t)sy * W + sx) * C, (size_t)C);
        }
    return 0;
}

/* The alpha of a PNG (and whether it has colour), with libpng's simplified
 * API; *alpha NULL when the PNG has none. */
static int png_alpha_(const uint8_t *bytes, size_t n, int w, int h, uint8_t **alpha, int *colour)
{
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    *alpha = NULL;
    if (!png_image_begin_read_from_memory(&pi, bytes, n))
        return err_set("PNG: %s", pi.message);
    *colour = (pi.format & PNG_FORMAT_FLAG_COLOR) != 0;
    if (!(pi.format & PNG_FORMAT_FLAG_ALPHA)) {
        png_image_free(&pi);
        return 0;
    }
    if ((int)pi.width != w || (int)pi.height != h) {
        png_image_free(&pi);
        return err_set("PNG: inconsistent size");
    }
    pi.format = PNG_FORMAT_RGBA;
    uint8_t *rgba = malloc(PNG_IMAGE_SIZE(pi));
    if (!rgba) {
        png_image_free(&pi);
        return err_set("PNG: out of memory");
    }
    if (!png_image_finish_read(&pi, NULL, rgba, 0, NULL)) {
        free(rgba);
        return err_set("PNG: %s", pi.message);
    }
    size_t np = (size_t)w * h;
    for (size_t i = 0; i < np; i++)
        rgba[i] = rgba[4 * i + 3];
    *alpha = rgba;
    return 0;
}

int photo_decode(photo *p, const uint8_t *bytes, size_t n, long max_pixels)
{
    memset(p, 0, sizeof *p);
    int w, h;
    const char *fmt;
    if (image_probe(bytes, n, &w, &h, &fmt) != 0)
        return -1;
    if ((long)w * h > max_pixels)
        return err_set("%dx%d is %.1f megapixels, over the limit of %.0f", w, h, (double)w * h / 1e6,
                       max_pixels / 1e6);
    p->jpeg = strcmp(fmt, "JPEG") == 0;
    image im = {0};
    image_need need = {.max_pixels = max_pixels};
    if (image_decode_need(&im, bytes, n, &need) != 0)
        return -1;
    uint8_t *alpha = NULL;
    if (p->jpeg) {
        int comps;
        jpeg_walk_(bytes, n, &p->orientation, &comps);
        p->grey = comps == 1;
    } else {
        int colour = 1;
        p->orientation = photo_exif_orientation(bytes, n);
        if (png_alpha_(bytes, n, im.w, im.h, &alpha, &colour) != 0) {
            image_free(&im);
            return -1;
        }
        p->grey = !colour;
    }
    if (alpha) {
        image a = {.w = im.w, .h = im.h, .c = 4};
        if (!(a.px = malloc((size_t)im.w * im.h * 4))) {
            free(alpha);
            image_free(&im);
            return err_set("photo: out of memory");
        }
        for (size_t i = 0; i < (size_t)im.w * im.h; i++) {
            memcpy(a.px + 4 * i, im.px + 3 * i, 3);
            a.px[4 * i + 3] = alpha[i];
        }
        free(alpha);
        image_free(&im);
        im = a;
    }
    if (p->orientation > 1) {
        image t = {0};
        if (photo_orient(&t, &im, p->orientation) != 0) {
            image_free(&im);
            return -1;
        }
        image_free(&im);
        im = t;
    }
    p->im = im;
    return 0;
}

int photo_encode(const photo *p, bool jpeg, uint8_t **out, size_t *n)
{
    const image *im = &p->im;
    int c = p->grey ? (im->c == 4 && !jpeg ? 2 : 1) : (jpeg ? 3 : im->c);
    if (c == im->c)
        return jpeg ? image_encode_jpeg(im, 95, out, n) : image_encode_png(im, out, n);
    /* grey (luma as PIL's convert("L")), grey + alpha, or RGB from RGBA */
    image t = {.w = im->w, .h = im->h, .c = c};
    if (!(t.px = malloc((size_t)im->w * im->h * t.c)))
        return err_set("photo: out of memory");
    for (size_t i = 0; i < (size_t)im->w * im->h; i++) {
        const uint8_t *s = im->px + i * im->c;
        uint8_t *d = t.px + i * t.c;
        if (c == 3) {
            memcpy(d, s, 3);
            continue;
        }
        uint8_t l = (uint8_t)((s[0] * 19595 + s[1] * 38470 + s[2] * 7471 + 0x8000) >> 16);
        if (c == 1)
            d[0] = l;
        else
            d[0] = l, d[1] = s[3];
    }
    int rc = jpeg ? image_encode_jpeg(&t, 95, out, n) : image_encode_png(&t, out, n);
    image_free(&t);
    return rc;
}

void photo_free(photo *p)
{
    if (p)
        image_free(&p->im);
}

int photo_out_format(const char *path)
{
    struct stat st;
    if (strcmp(path, "-") == 0 || (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)))
        return PHOTO_SAME;
    const char *base = strrchr(path, '/'), *dot = strrchr(base ? base + 1 : path, '.');
    if (!dot || dot[1] == 0)
        return PHOTO_SAME;
    if (!strcasecmp(dot, ".png"))
        return PHOTO_PNG;
    if (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"))
        return PHOTO_JPEG;
    return err_set("%s: cannot write %s files: name the output .png, .jpg or .jpeg", path, dot + 1);
}

bool photo_out_jpeg(int fmt, bool in_jpeg)
{
    return fmt == PHOTO_SAME ? in_jpeg : fmt == PHOTO_JPEG;
}
