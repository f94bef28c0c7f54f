/*
 * image-io: JPEG and PNG codecs for image.h, tuned to give the pixels PIL
 * 9.4 gives after Image.open(f).convert("RGB").
 *
 * JPEG: libjpeg-turbo with PIL's decoder settings (JDCT_ISLOW, fancy
 * upsampling: the library defaults), so the output is identical to PIL's
 * when both link the same libjpeg-turbo.  libjpeg's error_exit is replaced
 * by a longjmp so bad input can never exit the process; warnings are
 * ignored as PIL ignores them, except those that mean the data cannot pay
 * for the image it declares: "premature end of file" (PIL reports a
 * truncated image, and so do we), "premature end of data segment" (the
 * image data stops at a marker: libjpeg would decode the rest of a huge
 * declared size from nothing) and an inconsistent progression (scans that
 * repeat or skip refinements, which no encoder writes).  Progressive JPEGs
 * may have at most IMAGE_MAX_SCANS scans, and arithmetic-coded ones, which
 * libjpeg decodes past the end of their data without a warning, are
 * refused.  So, with Huffman coding's bit per block at least, a JPEG's
 * decoding costs in proportion to its size (and the caller's pixel limit).
 * PNG: libpng with setjmp error handling and a bounds-checked memory reader.
 */
#include "image.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "base/err.h"

void image_free(image *im)
{
    if (!im)
        return;
    free(im->px);
    im->px = NULL;
}

/* Checks shared by both decoders, before any pixel memory is allocated. */
static int check_size_(const char *fmt, long w, long h, long max_pixels)
{
    if (w <= 0 || h <= 0)
        return err_set("corrupt %s: zero-size image (%ldx%ld)", fmt, w, h);
    if (max_pixels <= 0 || max_pixels > IMAGE_MAX_PIXELS)
        max_pixels = IMAGE_MAX_PIXELS;
    if (w > max_pixels / h)
        return err_set("%s too large: %ldx%ld exceeds the limit of %ld pixels", fmt, w, h, max_pixels);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* JPEG */

struct jerr_ {
    struct jpeg_error_mgr pub;
    jmp_buf jmp;
    char msg[JMSG_LENGTH_MAX];
};

static void jpeg_error_exit_(j_common_ptr cinfo)
{
    struct jerr_ *e = (struct jerr_ *)cinfo->err;
    cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jmp, 1);
}

/* Warnings (level -1) are dropped like PIL's decoder does, but those that
 * say the data does not hold the image it declares are fatal: libjpeg
 * would go on filling a size the file cannot pay for. */
static void jpeg_emit_message_(j_common_ptr cinfo, int level)
{
    struct jerr_ *e = (struct jerr_ *)cinfo->err;
    if (level >= 0)
        return;
    switch (cinfo->err->msg_code) {
    case JWRN_JPEG_EOF: snprintf(e->msg, sizeof e->msg, "truncated data (premature end of file)"); break;
    case JWRN_HIT_MARKER:
        snprintf(e->msg, sizeof e->msg, "truncated data (premature end of data segment)");
        break;
    case JWRN_BOGUS_PROGRESSION:
        snprintf(e->msg, sizeof e->msg, "inconsistent progression (scans repeat or skip refinements)");
        break;
    default: return;
    }
    longjmp(e->jmp, 1);
}

/* Called by libjpeg as it reads each scan: the scan limit. */
struct jprogress_ {
    struct jpeg_progress_mgr pub;
    struct jerr_ *err;
};

static void jpeg_progress_(j_common_ptr cinfo)
{
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > IMAGE_MAX_SCANS) {
        struct jerr_ *e = ((struct jprogress_ *)cinfo->progress)->err;
        snprintf(e->msg, sizeof e->msg, "more than %d scans (a progressive JPEG has about 10)",
                 IMAGE_MAX_SCANS);
        longjmp(e->jmp, 1);
    }
}

/* The DCT scale M/8 that decodes a w x h JPEG at 1/8, 1/4 or 1/2 of its
 * size, the smallest that keeps both sides at least twice min_w x min_h:
 * libjpeg scales while it transforms, so a large photo costs a fraction of
 * its pixels, and the caller's antialiased resize still does the last
 * factor of two or more, so the result stays close to a full decode.  An
 * image less than twice as large decodes in full, bit for bit as PIL does
 * (UTKFace's 200x200 chips for aug --size 48 and up: 128 and 256 train). */
static int jpeg_scale_(long w, long h, const image_need *need)
{
    if (!need || need->min_w <= 0 || need->min_h <= 0)
        return 8;
    for (int m = 1; m < 8; m *= 2)
        if ((w * m + 7) / 8 >= 2L * need->min_w && (h * m + 7) / 8 >= 2L * need->min_h)
            return m;
    return 8;
}

static void jpeg_silent_output_(j_common_ptr cinfo)
{
    (void)cinfo;
}

/* PIL's cmyk2rgb, with its MULDIV255 rounding. */
static inline uint8_t cmyk_ch_(int c, int nk)
{
    int t = c * nk + 128;
    int v = nk - (((t >> 8) + t) >> 8);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static int decode_jpeg_(image *out, const uint8_t *bytes, size_t n, const image_need *need)
{
    struct jpeg_decompress_struct cinfo;
    struct jerr_ jerr;
    struct jprogress_ progress = {.pub.progress_monitor = jpeg_progress_, .err = &jerr};
    /* volatile: modified between setjmp and a possible longjmp. */
    uint8_t *volatile px = NULL, *volatile row = NULL;

    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_error_exit_;
    jerr.pub.emit_message = jpeg_emit_message_;
    jerr.pub.output_message = jpeg_silent_output_;
    jerr.msg[0] = 0;
    if (setjmp(jerr.jmp)) {
        jpeg_destroy_decompress(&cinfo);
        free(px);
        free(row);
        return err_set("corrupt JPEG: %s", jerr.msg);
    }
    jpeg_create_decompress(&cinfo);
    cinfo.progress = &progress.pub;
    jpeg_mem_src(&cinfo, bytes, (unsigned long)n);
    jpeg_read_header(&cinfo, TRUE);
    if (check_size_("JPEG", (long)cinfo.image_width, (long)cinfo.image_height, need ? need->max_pixels : 0)) {
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    /* Arithmetic decoding runs on silently past the end of its data, so a
     * few bytes could stand for a whole declared size; browsers do not
     * decode such files either. */
    if (cinfo.arith_code) {
        jpeg_destroy_decompress(&cinfo);
        return err_set("JPEG: arithmetic coding is not supported (only Huffman-coded JPEGs)");
    }
    /* PIL: 1 component -> "L", 3 -> "RGB", 4 -> "CMYK" read as "CMYK;I"
     * (Adobe inverted convention, assumed always). */
    int cmyk = 0;
    switch (cinfo.num_components) {
    case 1: cinfo.out_color_space = JCS_GRAYSCALE; break;
    case 3: cinfo.out_color_space = JCS_RGB; break;
    case 4:
        cinfo.out_color_space = JCS_CMYK;
        cmyk = 1;
        break;
    default:
        jpeg_destroy_decompress(&cinfo);
        return err_set("corrupt JPEG: unsupported %d components", cinfo.num_components);
    }
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    cinfo.scale_num = (unsigned)jpeg_scale_((long)cinfo.image_width, (long)cinfo.image_height, need);
    cinfo.scale_denom = 8;
    jpeg_start_decompress(&cinfo);

    int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
    int oc = cinfo.output_components;
    px = malloc((size_t)w * h * 3);
    row = malloc((size_t)w * oc);
    if (!px || !row) {
        jpeg_destroy_decompress(&cinfo);
        free(px);
        free(row);
        return err_set("JPEG: out of memory for %dx%d", w, h);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        int y = (int)cinfo.output_scanline;
        uint8_t *dst = px + (size_t)y * w * 3;
        JSAMPROW rp = (oc == 3) ? dst : row;
        if (jpeg_read_scanlines(&cinfo, &rp, 1) != 1) {
            snprintf(jerr.msg, sizeof jerr.msg, "decoder stalled at row %d", y);
            longjmp(jerr.jmp, 1);
        }
        if (oc == 1) {
            for (int x = 0; x < w; x++)
                dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = row[x];
        } else if (cmyk) {
            for (int x = 0; x < w; x++) {
                const uint8_t *s = row + 4 * x;
                int nk = s[3]; /* 255 - inverted K */
                dst[3 * x + 0] = cmyk_ch_(255 - s[0], nk);
                dst[3 * x + 1] = cmyk_ch_(255 - s[1], nk);
                dst[3 * x + 2] = cmyk_ch_(255 - s[2], nk);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    out->w = w;
    out->h = h;
    out->c = 3;
    out->px = px;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* PNG */

struct png_src_ {
    const uint8_t *p;
    size_t n, off;
    char msg[200];
};

static void png_read_mem_(png_structp png, png_bytep dst, png_size_t len)
{
    struct png_src_ *s = png_get_io_ptr(png);
    if (len > s->n - s->off)
        png_error(png, "truncated data");
    memcpy(dst, s->p + s->off, len);
    s->off += len;
}

static void png_error_fn_(png_structp png, png_const_charp msg)
{
    struct png_src_ *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warning_fn_(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* One decoded PNG row (after libpng's transforms) to RGB.  bps16 marks the
 * untransformed 16-bit grey case, which PIL opens as mode "I" and clamps. */
static void png_row_to_rgb_(uint8_t *dst, const uint8_t *src, int w, int ch, int grey16)
{
    if (grey16) {
        for (int x = 0; x < w; x++) {
            unsigned v = (unsigned)src[2 * x] << 8 | src[2 * x + 1];
            uint8_t g = (uint8_t)(v > 255 ? 255 : v);
            dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = g;
        }
        return;
    }
    for (int x = 0; x < w; x++) {
        const uint8_t *s = src + (size_t)x * ch;
        if (ch <= 2)
            dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = s[0];
        else
            memcpy(dst + 3 * x, s, 3);
    }
}

static int decode_png_(image *out, const uint8_t *bytes, size_t n, long max_pixels, int whole)
{
    struct png_src_ src = {bytes, n, 0, {0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_error_fn_, png_warning_fn_);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile px = NULL, *volatile buf = NULL;
    png_bytep *volatile rows = NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return err_set("PNG: out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(px);
        free(buf);
        free(rows);
        return err_set("corrupt PNG: %s", src.msg);
    }
    png_set_read_fn(png, &src, png_read_mem_);
    /* Our own pixel limit applies; libpng's default 1e6 side limit would
     * refuse legal long thin images. */
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    if (whole) {
        png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
        png_set_benign_errors(png, 0);
    }
    png_read_info(png, info);
    png_uint_32 w32, h32;
    int depth, ctype, interlace;
    png_get_IHDR(png, info, &w32, &h32, &depth, &ctype, &interlace, NULL, NULL);
    if (check_size_("PNG", (long)w32, (long)h32, max_pixels)) {
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    /* The pixels come from the deflated IDAT data, which is somewhere in
     * what is left of the file and expands at most 1032:1: a header asking
     * for more than that is refused before the pixels are allocated, so a
     * small file never costs a large image. */
    static const int chans[7] = {1, 0, 3, 1, 2, 0, 4}; /* by colour type */
    double raw = (double)w32 * h32 * depth * (ctype < 7 ? chans[ctype] : 4) / 8;
    if (raw > (double)(n - src.off) * 1032)
        png_error(png, "the header's size needs more image data than the file holds");
    int w = (int)w32, h = (int)h32;
    int grey16 = ctype == PNG_COLOR_TYPE_GRAY && depth == 16;
    if (ctype == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16 && !grey16)
        png_set_strip_16(png); /* keeps the high byte, as PIL's ";16B" unpackers */
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int ch = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);

    px = malloc((size_t)w * h * 3);
    if (!px)
        png_error(png, "out of memory");
    if (passes > 1) {
        /* Interlaced: libpng needs the whole image to combine passes. */
        buf = malloc(rowbytes * h);
        rows = malloc(sizeof(png_bytep) * h);
        if (!buf || !rows)
            png_error(png, "out of memory");
        for (int y = 0; y < h; y++)
            rows[y] = buf + rowbytes * y;
        png_read_image(png, rows);
        for (int y = 0; y < h; y++)
            png_row_to_rgb_(px + (size_t)y * w * 3, rows[y], w, ch, grey16);
    } else {
        buf = malloc(rowbytes);
        if (!buf)
            png_error(png, "out of memory");
        for (int y = 0; y < h; y++) {
            png_read_row(png, buf, NULL);
            png_row_to_rgb_(px + (size_t)y * w * 3, buf, w, ch, grey16);
        }
    }
    /* The trailing chunks (IEND) are not needed for the pixels; PIL does not
     * read them either, so a file cut after the image data still decodes,
     * unless the caller asks for the whole file to be right. */
    if (whole) {
        png_read_end(png, NULL);
        if (src.off != n)
            png_error(png, "data after IEND");
    }
    png_destroy_read_struct(&png, &info, NULL);
    free(buf);
    free(rows);
    out->w = w;
    out->h = h;
    out->c = 3;
    out->px = px;
    return 0;
}

int image_decode(image *out, const uint8_t *bytes, size_t n)
{
    return image_decode_need(out, bytes, n, NULL);
}

int image_decode_need(image *out, const uint8_t *bytes, size_t n, const image_need *need)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    out->w = out->h = out->c = 0;
    out->px = NULL;
    if (!bytes || n == 0)
        return err_set("cannot decode image: empty input");
    if (n >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF)
        return decode_jpeg_(out, bytes, n, need);
    if (n >= 8 && memcmp(bytes, png_sig, 8) == 0)
        return decode_png_(out, bytes, n, need ? need->max_pixels : 0, need && need->whole);
    return err_set("cannot decode image: not a JPEG or PNG (first bytes %02x %02x %02x %02x)", bytes[0],
                   n > 1 ? bytes[1] : 0, n > 2 ? bytes[2] : 0, n > 3 ? bytes[3] : 0);
}

/* ------------------------------------------------------------------------ */
/* Encoders */

int image_encode_jpeg(const image *im, int quality, uint8_t **out, size_t *n)
{
    struct jpeg_compress_struct cinfo;
    struct jerr_ jerr;
    unsigned char *b = NULL; /* address escapes to libjpeg, so it survives longjmp */
    unsigned long size = 0;

    *out = NULL;
    *n = 0;
    if (!im || !im->px || im->w <= 0 || im->h <= 0 || (im->c != 1 && im->c != 3))
        return err_set("encode JPEG: need a 1- or 3-channel image");
    if (quality < 1 || quality > 100)
        return err_set("encode JPEG: quality %d not in 1..100", quality);
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_error_exit_;
    jerr.pub.output_message = jpeg_silent_output_;
    if (setjmp(jerr.jmp)) {
        jpeg_destroy_compress(&cinfo);
        free(b);
        return err_set("encode JPEG: %s", jerr.msg);
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &b, &size);
    cinfo.image_width = (JDIMENSION)im->w;
    cinfo.image_height = (JDIMENSION)im->h;
    cinfo.input_components = im->c;
    cinfo.in_color_space = im->c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW rp = im->px + (size_t)cinfo.next_scanline * im->w * im->c;
        jpeg_write_scanlines(&cinfo, &rp, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = b;
    *n = size;
    return 0;
}

struct png_dst_ {
    uint8_t *p;
    size_t n, cap;
    char msg[200];
};

static void png_write_mem_(png_structp png, png_bytep data, png_size_t len)
{
    struct png_dst_ *d = png_get_io_ptr(png);
    if (len > d->cap - d->n) {
        size_t cap = d->cap ? d->cap : 4096;
        while (cap - d->n < len)
            cap *= 2;
        uint8_t *p = realloc(d->p, cap);
        if (!p)
            png_error(png, "out of memory");
        d->p = p;
        d->cap = cap;
    }
    memcpy(d->p + d->n, data, len);
    d->n += len;
}

static void png_flush_mem_(png_structp png)
{
    (void)png;
}

static void png_werror_fn_(png_structp png, png_const_charp msg)
{
    struct png_dst_ *d = png_get_error_ptr(png);
    snprintf(d->msg, sizeof d->msg, "%s", msg);
    png_longjmp(png, 1);
}

int image_encode_png(const image *im, uint8_t **out, size_t *n)
{
    static const int ctypes[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                  PNG_COLOR_TYPE_RGB_ALPHA};
    struct png_dst_ dst = {NULL, 0, 0, {0}};
    *out = NULL;
    *n = 0;
    if (!im || !im->px || im->w <= 0 || im->h <= 0 || im->c < 1 || im->c > 4)
        return err_set("encode PNG: need a 1- to 4-channel image");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &dst, png_werror_fn_, png_warning_fn_);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        return err_set("encode PNG: out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(dst.p);
        return err_set("encode PNG: %s", dst.msg);
    }
    png_set_write_fn(png, &dst, png_write_mem_, png_flush_mem_);
    png_set_IHDR(png, info, (png_uint_32)im->w, (png_uint_32)im->h, 8, ctypes[im->c], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < im->h; y++)
        png_write_row(png, im->px + (size_t)y * im->w * im->c);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    *out = dst.p;
    *n = dst.n;
    return 0;
}
