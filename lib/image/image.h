/*
 * image: decode/encode JPEG and PNG, and the geometric operations of the
 * torchvision training transforms, reproducing PIL 9.4 / torchvision 0.14
 * on PIL images bit for bit (tests/unit/test_image.c checks each op against
 * tests/py/image_ops_ref.py).  Pixels are 8-bit, HWC interleaved; every
 * function that fills an `image *out` allocates out->px (free with
 * image_free).  Errors: -1 with err_msg() set; nothing exits or prints.
 * image-io.c holds the codecs, image-ops.c the geometry and conversions.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* HWC interleaved u8; owns px.  c is 3 (RGB) after decode; the ops accept
 * any c from 1 to 4 and keep it. */
typedef struct image {
    int w, h, c;
    uint8_t *px;
} image;

/* Refuse larger images before allocating anything (decompression bombs). */
#define IMAGE_MAX_PIXELS (1L << 26)
/* The default limit of the tools that read dataset faces (aug, fid): 16 Mpx
 * holds a 4896x3264 camera photo; UTKFace's chips are 200x200. */
#define IMAGE_DATASET_MAX_PIXELS (1L << 24)
/* The most scans a progressive JPEG may have.  Each scan revisits every block
 * of the components it codes, and an empty scan costs a few bytes, so scans
 * multiply a small file's cost: 84 KB of repeated scans took 19 s.
 * libjpeg's own progressions have 6 (grey) or 10 (colour) scans and
 * scan-optimising encoders stay under ~20; TurboJPEG's TJFLAG_LIMITSCANS
 * (the model) stops at 500.  100 keeps a worst case 5x below that with room
 * for any real encoder. */
#define IMAGE_MAX_SCANS 100

/* What a caller will use of an image, so that no file costs more than that:
 * max_pixels refuses larger images from their header (0: IMAGE_MAX_PIXELS,
 * which also caps larger values); a JPEG at least twice min_w x min_h (0:
 * full size) decodes at 1/2, 1/4 or 1/8 of its size (libjpeg's DCT
 * scaling), the smallest that keeps both sides at least twice as large, for
 * callers that resize to min_w x min_h or less anyway.  Such a reduced
 * decode is close to, not bit for bit, PIL's full decode and resize;
 * smaller images decode in full, exactly as PIL does. */
typedef struct image_need {
    long max_pixels;
    int min_w, min_h;
    /* Check the whole file, not only what the pixels need: a PNG's chunks
     * after the image data are read and their CRCs checked, IEND must end
     * it, and libpng's benign errors (extra image data) are errors. */
    int whole;
} image_need;

/* Sniff JPEG or PNG from the magic bytes and decode to 8-bit RGB exactly as
 * PIL's Image.open(...).convert("RGB") would: grey is replicated, alpha is
 * dropped (not composited), palettes expanded, 16-bit samples keep their
 * high byte (16-bit grey is clamped to 255, PIL's mode "I" quirk), CMYK
 * JPEGs use PIL's cmyk2rgb.  Truncated or corrupt input is an error. */
int image_decode(image *out, const uint8_t *bytes, size_t n);
/* image_decode within what `need` asks (NULL: the defaults above). */
int image_decode_need(image *out, const uint8_t *bytes, size_t n, const image_need *need);
/* NULL-safe; sets px to NULL. */
void image_free(image *im);

/* Encode to a malloc'd buffer the caller frees.  c may be 1, 3 or 4. */
int image_encode_png(const image *im, uint8_t **out, size_t *n);
/* c may be 1 or 3; quality 1..100, 4:2:0 chroma as PIL's default. */
int image_encode_jpeg(const image *im, int quality, uint8_t **out, size_t *n);

/* PIL Image.resize((w, h), BILINEAR): antialiased (support scaled by the
 * factor when downscaling), 22-bit fixed-point coefficients, horizontal
 * pass then vertical pass.  Same size -> copy. */
int image_resize(image *out, const image *in, int w, int h);
/* torchvision Resize(size) with an int: shorter side -> size, longer side
 * int(size * long / short). */
int image_resize_short(image *out, const image *in, int size);
/* Region must lie inside the image (torchvision would pad; we refuse). */
int image_crop(image *out, const image *in, int x, int y, int w, int h);
/* torchvision CenterCrop: offsets int(round((H - h) / 2.0)), round half to
 * even as Python does; the crop must fit inside. */
int image_center_crop(image *out, const image *in, int w, int h);
int image_hflip(image *out, const image *in);
/* torchvision F.rotate(img, degrees, NEAREST, expand=False, fill=0) on a PIL
 * image = PIL Image.rotate: counter-clockwise about (w/2, h/2), nearest,
 * black fill, same size.  degrees is the float32 torch's RandomRotation
 * draws; it is widened to double as Python would see it. */
int image_rotate(image *out, const image *in, float degrees);

/* ToTensor + Normalize(0.5, 0.5): out[c][y][x] = (px/255.0f - 0.5f)/0.5f,
 * computed in float as torch does.  out holds c*h*w floats. */
void image_to_chw_f32(float *out, const image *in);
/* image_rotate then image_to_chw_f32 in one pass, no rotated image in
 * between: out holds c*h*w floats of in's size.  Same values. */
int image_rotate_chw_f32(float *out, const image *in, float degrees);
/* The inverse for saving: clamp to [-1,1], y = (x+1)/2, then as
 * torchvision.utils.save_image: trunc(clamp(y*255 + 0.5, 0, 255)); NaN -> 0.
 * Allocates out->px.  Returns 0, or -1 (bad size / out of memory). */
int image_from_chw_f32(image *out, const float *in, int c, int h, int w);
/* RGBA -> RGB in place (px keeps its allocation), for the generator, which
 * takes RGB; any other c is left as it is. */
void image_drop_alpha(image *im);
/* Copy src into dst with its top-left corner at (x, y); the channels must
 * match and src must fit. */
int image_blit(image *dst, const image *src, int x, int y);
