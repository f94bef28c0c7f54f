/*
 * transform: the reference's torchvision pipelines on an RGB image.
 *   train: RandomHorizontalFlip(0.5), Resize(size+50), RandomCrop(size),
 *          RandomRotation((0, 80))
 *   eval:  Resize(size+50), CenterCrop(size)
 * Random draws come from g in torchvision's order (flip, crop row, crop
 * column, angle), so with g seeded like torch.manual_seed(s) the results
 * equal the reference transforms run after that seed, image for image.
 * The image is replaced in place; -1 with err_msg() on failure.
 */
#pragma once

#include "image.h"
#include "rng.h"

int transform_train(image *im, int size, rng *g);
/* transform_train, then ToTensor+Normalize into out [3,size,size] (the same
 * floats as image_to_chw_f32 of its result) without the rotated image. */
int transform_train_chw_f32(float *out, image *im, int size, rng *g);
int transform_eval(image *im, int size);
