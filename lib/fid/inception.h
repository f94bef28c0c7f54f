/*
 * inception: the "FID Inception" network (TensorFlow's 2015-12-05 Inception
 * v3 graph as pytorch-fid and torch-fidelity port it) up to its 2048-d
 * pool3 features, running on a backend through lib/backend/layers-pool.h, plus the
 * two input conventions of docs/fid-inception.md §1:
 *
 *   FID_CONV_PYTORCH_FID  pytorch-fid: pixels k/255 in [0,1] (float tensors
 *                         in [-1,1] map to y*0.5+0.5), F.interpolate bilinear
 *                         align_corners=False to 299x299, then 2x-1;
 *   FID_CONV_TORCHMETRICS torchmetrics < 1.8 / torch-fidelity: uint8 pixels
 *                         (float tensors: trunc(clamp((y*0.5+0.5)*255)), as
 *                         torchmetrics' normalize=True after aging-gan's
 *                         y*0.5+0.5), TF1 legacy resize, then (x-128)/128.
 *
 *   struct inception *net = inception_load(be, "inception.safetensors", 8);
 *   inception_set_image_u8(net, 0, px, 3, h, w, 1, FID_CONV_PYTORCH_FID);  // slot 0
 *   ...                                                                    // slots 1..n-1
 *   inception_forward(net, n, feats);                  // feats: host [n,2048] float
 *   inception_free(net);
 *
 * Weights: a safetensors file with pytorch-fid's state_dict names (what
 * `ckpt import pt_inception-2015-12-05-6726825d.pth` writes): for each of
 * the 94 BasicConv2d paths P, P.conv.weight [out,in,kh,kw] and P.bn.weight,
 * .bias, .running_mean, .running_var [out] (F32, or F16/BF16/F64 converted);
 * fc.* and num_batches_tracked are ignored.  BatchNorm (eps 0.001, eval) is
 * folded into the convolutions at load time.  Memory: about 15 MB of
 * activations per batch slot plus 87 MB of parameters.
 */
#pragma once

#include <stdint.h>

#include "backend/backend.h"

#define INCEPTION_DIM    2048 /* pool3 features */
#define INCEPTION_SIZE   299  /* network input side */
#define INCEPTION_BN_EPS 1e-3

/* The standard weights, for messages: where they come from and how to convert them. */
#define INCEPTION_WEIGHTS_URL                                                                                \
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"                                 \
    "pt_inception-2015-12-05-6726825d.pth"

enum fid_convention {
    FID_CONV_PYTORCH_FID,
    FID_CONV_TORCHMETRICS,
};

/* "pytorch-fid" / "torchmetrics"; parse returns -1 for anything else
 * (also accepts "pf" and "tm"). */
const char *fid_convention_name(enum fid_convention c);
int fid_convention_parse(const char *s, enum fid_convention *out);

struct inception;

/* Build the network on be for batches of up to max_batch images and load
 * the weights from path.  NULL + err_set on failure; a file that is not the
 * FID Inception (a missing or mis-shaped tensor, torchvision's ImageNet
 * Inception with AuxLogits or a 1000-class fc) is refused with a message
 * naming the tensor.  Caller owns the result (inception_free, NULL-safe). */
struct inception *inception_load(backend_t be, const char *path, int max_batch);
void inception_free(struct inception *net);
int inception_max_batch(const struct inception *net);

/* Put one image into batch slot `slot` (0 <= slot < max_batch), resized to
 * 299x299 and normalised by `conv`.  Any size >= 1x1; c must be 3.
 * f32: chw [3,h,w] in [-1,1] (the stream's tensors).
 * u8: pixels 0..255, hwc=1: [h,w,3] interleaved (a decoded image), hwc=0:
 * [3,h,w] (a u8 tensor record). */
int inception_set_image_f32(struct inception *net, int slot, const float *chw, int c, int h, int w,
                            enum fid_convention conv);
int inception_set_image_u8(struct inception *net, int slot, const uint8_t *px, int c, int h, int w, int hwc,
                           enum fid_convention conv);
/* Run slots 0..n-1; feats (HOST memory) gets [n, 2048] pool3 features. */
int inception_forward(struct inception *net, int n, float *feats);
