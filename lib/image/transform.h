/*
 * transform: the reference's torchvision pipelines on an RGB image.
 *   train: RandomHorizontalFlip(0.5), Resize((R, R)), RandomCrop(size),
 *          RandomRotation((0, 80))
 *   eval:  Resize((R, R)), CenterCrop(size)
 * Resize((R, R)) squashes a non-square image to a square, as the reference
 * does; transform_keep_aspect(1) resizes the shorter side to R instead.
 * with R = resize, or when resize <= 0 transform_resize_size(size): the
 * reference's 256+50 framing kept in proportion at other sizes (R = 306 at
 * 256, 153 at 128).  A model runs best framed as it was trained, so its
 * checkpoint records R (config "resize").
 * Random draws come from g in torchvision's order (flip, crop row, crop
 * column, angle), so with g seeded like torch.manual_seed(s) the results
 * equal the reference transforms run after that seed, image for image.
 * The image is replaced in place; -1 with err_msg() on failure.
 */
#pragma once

#include "image.h"
#include "base/rng.h"

/* The side an image is resized to before cropping size x size. */
int transform_resize_size(int size);
/* Process-wide: 1 = keep the aspect ratio (shorter side to R, torchvision's
 * Resize(R)), 0 = squash to R x R (the default, the reference's). */
void transform_keep_aspect(int on);
int transform_train(image *im, int size, int resize, rng *g);
/* transform_train, then ToTensor+Normalize into out [3,size,size] (the same
 * floats as image_to_chw_f32 of its result) without the rotated image. */
int transform_train_chw_f32(float *out, image *im, int size, int resize, rng *g);
int transform_eval(image *im, int size, int resize);
