/*
 * image-probe: JPEG/PNG dimensions from the header (see image-probe.h).
 * Every read is bounds-checked against n; nothing is allocated.
 */
#include "image-probe.h"

#include <string.h>

#include "base/err.h"

static unsigned be16_(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}
static uint32_t be32_(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

// ----------------------------------------------------------------------------
// PNG: signature (8), then chunk length (4) = 13, "IHDR", width (4), height (4).

static int probe_png_(const uint8_t *b, size_t n, int *w, int *h)
{
    if (n < 24)
        return err_set("corrupt PNG: header cut short (%zu bytes)", n);
    if (be32_(b + 8) != 13 || memcmp(b + 12, "IHDR", 4) != 0)
        return err_set("corrupt PNG: the first chunk is not IHDR");
    uint32_t pw = be32_(b + 16), ph = be32_(b + 20);
    /* The PNG spec caps both at 2^31 - 1. */
    if (pw == 0 || ph == 0 || pw > 0x7fffffffu || ph > 0x7fffffffu)
        return err_set("corrupt PNG: bad size %ux%u", (unsigned)pw, (unsigned)ph);
    *w = (int)pw;
    *h = (int)ph;
    return 0;
}

// ----------------------------------------------------------------------------
// JPEG: SOI, then segments FF xx [len16 payload...].  Standalone markers
// (TEM, RSTn) carry no length; fill bytes FF FF ... may precede a marker.
// The frame header SOFn is C0..CF except C4 (DHT), C8 (JPG) and CC (DAC):
// precision (1), height (2), width (2).  Scan data (after SOS) before a
// frame header means the file is broken, so SOS ends the walk.

static int probe_jpeg_(const uint8_t *b, size_t n, int *w, int *h)
{
    size_t i = 2;
    for (;;) {
        while (i < n && b[i] != 0xFF)
            i++; /* tolerate junk between segments, as libjpeg warns and goes on */
        while (i < n && b[i] == 0xFF)
            i++;
        if (i >= n)
            return err_set("corrupt JPEG: no frame header before the end of the data");
        unsigned m = b[i++];
        /* FF 00 is no marker: libjpeg discards it and searches on, so a
         * length read after it would skip to a different frame header */
        if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8))
            continue;
        if (m == 0xD9 || m == 0xDA)
            return err_set("corrupt JPEG: no frame header before the image data");
        if (i + 2 > n)
            return err_set("corrupt JPEG: header cut short");
        size_t len = be16_(b + i);
        if (len < 2 || i + len > n)
            return err_set("corrupt JPEG: header cut short");
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            if (len < 7)
                return err_set("corrupt JPEG: frame header too short");
            unsigned ph = be16_(b + i + 3), pw = be16_(b + i + 5);
            if (pw == 0 || ph == 0)
                return err_set("corrupt JPEG: bad size %ux%u", pw, ph);
            *w = (int)pw;
            *h = (int)ph;
            return 0;
        }
        i += len;
    }
}

int image_probe(const uint8_t *bytes, size_t n, int *w, int *h, const char **fmt)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (!bytes || n == 0)
        return err_set("not an image: empty input");
    if (n >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) {
        if (fmt)
            *fmt = "JPEG";
        return probe_jpeg_(bytes, n, w, h);
    }
    if (n >= 8 && memcmp(bytes, png_sig, 8) == 0) {
        if (fmt)
            *fmt = "PNG";
        return probe_png_(bytes, n, w, h);
    }
    return err_set("not a JPEG or PNG image");
}
