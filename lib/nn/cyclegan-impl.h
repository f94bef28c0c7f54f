/*
 * cyclegan-impl.h: what the two halves of cyclegan (cyclegan.c, the
 * networks, the training step and evaluation; cyclegan-ckpt.c, the training
 * state saved to and loaded from checkpoints) share.  Private to
 * lib/nn/cyclegan*.c.
 */
#pragma once

#include "cyclegan.h"

/* The four networks and their optimisers, i in the order G, F, DX, DY. */
struct net *cg_net_at(struct cyclegan *cg, int i);
struct adam *cg_opt_at(struct cyclegan *cg, int i);
