/*
 * transform: torchvision's training and evaluation transforms, composed
 * from the PIL-exact image operations.
 */
#include "transform.h"

#include <string.h>

#include "base/err.h"

/* Replace *a by the result of an op that wrote into *b. */
static int take_(int rc, image *a, image *b)
{
    if (rc != 0)
        return -1;
    image_free(a);
    *a = *b;
    memset(b, 0, sizeof *b);
    return 0;
}

int transform_resize_size(int size)
{
    /* size * 306/256, rounded: the reference's Resize(256 + 50) before
     * CenterCrop(256) keeps 84% of the face at every size, where a fixed
     * +50 would cut off hair and chin at 128 (72%). Exactly +50 at 256. */
    return (int)(((long)size * 306 + 128) / 256);
}

static int keep_aspect_;

void transform_keep_aspect(int on)
{
    keep_aspect_ = on;
}

static int resize_(image *im, int size, int resize)
{
    image t = {0};
    int r = resize > 0 ? resize : transform_resize_size(size);
    if (take_(keep_aspect_ ? image_resize_short(&t, im, r) : image_resize(&t, im, r, r), im, &t) != 0)
        return -1;
    if (im->w < size || im->h < size)
        return err_set("image of %dx%d is smaller than the crop size %d after resizing", im->w, im->h, size);
    return 0;
}

int transform_eval(image *im, int size, int resize)
{
    image t = {0};
    if (resize_(im, size, resize) != 0)
        return -1;
    return take_(image_center_crop(&t, im, size, size), im, &t);
}

/* Everything up to the rotation; *angle is its draw. */
static int train_until_rotate_(image *im, int size, int resize, rng *g, float *angle)
{
    image t = {0};
    if (rng_uniform_f32(g, 0.0f, 1.0f) < 0.5f && take_(image_hflip(&t, im), im, &t) != 0)
        return -1;
    if (resize_(im, size, resize) != 0)
        return -1;
    int y = (int)rng_below(g, (uint32_t)(im->h - size + 1));
    int x = (int)rng_below(g, (uint32_t)(im->w - size + 1));
    if (take_(image_crop(&t, im, x, y, size, size), im, &t) != 0)
        return -1;
    *angle = rng_uniform_f32(g, 0.0f, 80.0f);
    return 0;
}

int transform_train(image *im, int size, int resize, rng *g)
{
    image t = {0};
    float angle;
    if (train_until_rotate_(im, size, resize, g, &angle) != 0)
        return -1;
    return take_(image_rotate(&t, im, angle), im, &t);
}

int transform_train_chw_f32(float *out, image *im, int size, int resize, rng *g)
{
    float angle;
    if (train_until_rotate_(im, size, resize, g, &angle) != 0)
        return -1;
    return image_rotate_chw_f32(out, im, angle);
}
