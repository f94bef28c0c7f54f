/*
 * models: which checkpoint a tool runs when the user names none.
 *
 * In order: the user's own training run, outputs/checkpoints/best.safetensors
 * under the working directory; then the shipped model, $AGING_MODEL when it
 * is set, else models/utkface-128.safetensors of the source tree the tool
 * was built in (the folder above bin/, or two above for a bin/ inside a
 * build folder, as the sanitizer build has) or installed under
 * PREFIX/share/aging-cyclegan/ (PREFIX/bin holding the tool).  So `translate --y2o < a.jpg`
 * works right after `make` and after `make install`, and a user who has
 * trained a model gets theirs.
 *
 *   char path[PATH_MAX]; const char *what;
 *   if (!models_default(path, sizeof path, &what)) die("%s", err_msg());
 *   fprintf(stderr, "model: %s (%s)\n", path, what);
 */
#pragma once

#include <stddef.h>

/* The file name of the shipped model. */
#define MODELS_SHIPPED "utkface-128.safetensors"

/* The default checkpoint into buf (n bytes), *what = "your training run's
 * best checkpoint", "the model AGING_MODEL names" or "the shipped model";
 * NULL with err_msg() naming every place looked at when there is none.  A
 * run's checkpoint of at most half the shipped model's size (a toy run) is
 * used, with a "warning:" line on stderr naming both sizes. */
const char *models_default(char *buf, size_t n, const char **what);

struct infer;
/* The size to run generator g at and its framing (transform.h's resize):
 * asked (a --size option; 0 when not given) or else the size it was
 * trained at (256 when the checkpoint does not say), framed as in training
 * when that is the size.  Returns 1 when asked differs from a recorded
 * training size (worth a note to the user), else 0. */
int models_framing(const struct infer *g, int asked, int *size, int *resize);
