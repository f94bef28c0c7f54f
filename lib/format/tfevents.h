/*
 * tfevents: TensorBoard event files with scalar and image summaries, so that
 * `tensorboard --logdir outputs/logs` draws the training curves and
 * `wandb sync --sync-tensorboard` uploads them.
 *
 * Layout: a TFRecord file (per record: u64 length, u32 masked CRC-32C of the
 * length, the bytes, u32 masked CRC-32C of the bytes) of tensorflow.Event
 * protocol buffers: the first holds file_version "brain.Event:2", each
 * later one a Summary with one simple_value or one encoded image.  Encoded by hand (wire types
 * 0, 1, 2, 5): there is nothing else here that needs protobuf.
 *
 *   tfevents *tb = tfevents_open("outputs/logs");    // a new file per process
 *   tfevents_scalar(tb, "train/loss_DX", step, 0.41);
 *   tfevents_close(tb);
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct tfevents tfevents;

/* Create dir if needed and a new events.out.tfevents.<time>.<host>.<pid>
 * file in it.  NULL with err_msg() on failure. */
tfevents *tfevents_open(const char *dir);
/* Append one scalar at step (wall time now); flushed so readers see it. */
int tfevents_scalar(tfevents *t, const char *tag, int64_t step, double value);
/* Append one image (PNG bytes, w x h RGB) at step, e.g. a sample grid. */
int tfevents_image(tfevents *t, const char *tag, int64_t step, const void *png, size_t n, int w, int h);
/* Close (NULL-safe); -1 if the file could not be completed. */
int tfevents_close(tfevents *t);

/* CRC-32C (Castagnoli) of n bytes, as TFRecord uses before masking. */
uint32_t tfevents_crc32c(const void *data, size_t n);
