/*
 * model: the CycleGAN networks (ResNet generator, PatchGAN discriminator) as
 * a fixed list of layers run forward and backward through lib/backend/layers.h, so
 * they work on every backend.  Parameter and buffer names are exactly the
 * reference PyTorch state_dict names ("model.1.weight",
 * "model.10.conv_block.2.running_mean", "model.2.num_batches_tracked", ...),
 * ready to be prefixed with G./F./DX./DY.
 *
 *   rng r; rng_seed(&r, 0);                         // torch.manual_seed(0)
 *   struct net *G = gen_new(be, &(struct gen_config){32, 9}, &r);
 *   struct net *D = disc_new(be, &(struct disc_config){32}, &r);  // same draw order
 *   struct net_acts *a = net_acts_new(G, batch, 256, 256);  // one per call per step
 *   net_forward(a, x);                   // x [batch,3,256,256] device; output:
 *   float *y = net_acts_output(a, NULL); // [batch,3,256,256], owned by a
 *   net_zero_grad(G);
 *   net_backward(a, dy, dx);             // grads +=, dx += (dx may be NULL)
 *   net_acts_free(a); net_free(G);
 *
 * Memory: all parameters of a net in one device slab, all gradients in a
 * second slab of the same layout (net_params / net_grads, state_dict order of
 * the parameters), the BN running statistics in a third; num_batches_tracked
 * are host int64 counters.  Each net_acts owns one slab with every activation
 * its forward keeps for the backward, so several calls (G(x), G(fake_x),
 * G(y)) can be in flight and be back-propagated in any order.  The net owns
 * the backward scratch (shared by its acts) and reserves the backend
 * workspace, so forward/backward never allocate.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/rng.h"

struct net;
struct net_acts;

struct gen_config {
    int ngf;      /* filters of the first conv (reference: 32) */
    int n_blocks; /* residual blocks (reference: 9) */
};

struct disc_config {
    int ndf; /* filters of the first conv (reference: 32) */
};

/* Size limits of the configs (gen_new/disc_new refuse larger ones).  The
 * widest layer has 4 * width channels; checkpoint readers additionally
 * check that a file holds every tensor of the size it claims. */
#define NET_MAX_WIDTH      4096
#define NET_GEN_MAX_BLOCKS 12 /* the layer table's capacity */

/* Build a network on `be`.  With `init` non-NULL the parameters get PyTorch's
 * default initialisation drawn from it in the reference's construction order
 * (so G, F, DX, DY built in that order from one rng seeded like
 * torch.manual_seed(s) match PyTorch bit for bit); with NULL, conv weights are
 * zero (to be loaded).  BN weight 1, bias 0, running mean 0, var 1 either way.
 * Starts in training mode.  Caller owns the result (net_free); NULL + err_set
 * on failure. */
struct net *gen_new(backend_t be, const struct gen_config *cfg, rng *init);
struct net *disc_new(backend_t be, const struct disc_config *cfg, rng *init);
void net_free(struct net *net); /* NULL-safe */

/* Visit the named tensors gen_new(cfg) / disc_new(cfg) would have, in
 * state_dict order (net_tensor_at's order), without allocating the network:
 * data and grad are NULL.  Stops at the first non-zero return of fn and
 * returns it; -1 + err_set for a config the constructor would refuse.  For
 * readers that check a file against a network before building it. */
struct net_tensor;
typedef int (*net_tensor_fn)(const struct net_tensor *t, void *ctx);
int gen_each_tensor(const struct gen_config *cfg, net_tensor_fn fn, void *ctx);
int disc_each_tensor(const struct disc_config *cfg, net_tensor_fn fn, void *ctx);

/* Re-draw every parameter as the constructor does (reset_parameters order). */
int net_reset_parameters(struct net *net, rng *r);

// ----------------------------------------------------------------------------
// Named tensors, in state_dict order (per module: weight, bias, running_mean,
// running_var, num_batches_tracked).

enum net_tensor_kind {
    NET_PARAM,  /* float32, device, has a gradient */
    NET_BUFFER, /* float32 running statistic, device, no gradient */
    NET_COUNTER /* int64 num_batches_tracked, HOST memory, shape [] */
};

struct net_tensor {
    char name[64]; /* e.g. "model.10.conv_block.1.weight" */
    enum net_tensor_kind kind;
    int ndim; /* 4 for conv weights, 1 for vectors, 0 for counters */
    int64_t shape[4];
    size_t numel;
    void *data;  /* float* (device) or int64_t* (host, NET_COUNTER) */
    float *grad; /* same shape as data, NET_PARAM only, else NULL */
};

int net_tensor_count(const struct net *net);
/* i-th tensor, 0 <= i < net_tensor_count; the pointer lives as long as net. */
const struct net_tensor *net_tensor_at(const struct net *net, int i);
/* By state_dict name; NULL if absent. */
const struct net_tensor *net_tensor_find(const struct net *net, const char *name);

/* The parameter and gradient slabs (device), *n = number of floats.  Both
 * have the same layout: parameters back to back in state_dict order. */
float *net_params(struct net *net, size_t *n);
float *net_grads(struct net *net, size_t *n);
/* grads = 0 */
int net_zero_grad(struct net *net);

/* BatchNorm mode: 1 training (batch statistics, running stats updated,
 * num_batches_tracked++ on every forward), 0 eval (running statistics). */
void net_set_training(struct net *net, int training);
int net_is_training(const struct net *net);
backend_t net_backend(const struct net *net);

// ----------------------------------------------------------------------------
// Per-call activations, forward, backward

/* Activation set for one call on inputs [n,3,h,w].  Caller owns it
 * (net_acts_free, NULL-safe); it must not outlive its net.  NULL + err_set
 * if the size does not fit the network (e.g. discriminator input < 32). */
struct net_acts *net_acts_new(struct net *net, int n, int h, int w);
void net_acts_free(struct net_acts *a);

/* x [n,3,h,w] (device) -> output kept in `a` (the input is copied, so x may
 * change afterwards).  The BN mode is the net's mode at this call. */
int net_forward(struct net_acts *a, const float *x);
/* The output of the last forward: generator [n,3,h,w], discriminator [n]
 * (one logit per image: mean of the patch map).  shape (may be NULL) gets
 * {n,c,h,w} ({n,1,1,1} for the discriminator). */
float *net_acts_output(struct net_acts *a, int shape[4]);
size_t net_acts_output_numel(const struct net_acts *a);

/* Back-propagate dout (shape of the output) through the forward stored in a:
 * parameter gradients are ACCUMULATED into net_grads, and the gradient of the
 * input is ADDED to dx [n,3,h,w] unless dx is NULL (then it is not computed
 * at all).  Uses the BN mode of the forward.  dout is not modified. */
int net_backward(struct net_acts *a, const float *dout, float *dx);
