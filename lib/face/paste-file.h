/*
 * paste-file: picture files through a paste_job (lib/face/paste.h) into files,
 * as translate writes them: one to a path, or many into a folder, each
 * under its own name with the direction's tag (translate -o FOLDER).
 *
 *   char out[2 * PATH_MAX];
 *   switch (paste_file_to_dir(&job, "in/a.jpg", "res", "young2old", out, sizeof out)) {
 *   case PASTE_FILE_DONE: ...      // out: "res/a_young2old.jpg"
 *   case PASTE_FILE_SKIPPED: ...   // not a picture: err_msg() says why
 *   default: ...                   // the write failed: err_msg()
 *   }
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paste.h"

/* The largest picture file read (a larger one is refused, not cut). */
#define PASTE_FILE_MAX_BYTES ((size_t)512 << 20)

/* What happened to one picture; -1 (with err_msg()) is a write error. */
enum { PASTE_FILE_DONE, PASTE_FILE_SKIPPED };

/* DIR/NAME_TAG.EXT into out (cut to n bytes): NAME is path's file name
 * without its extension (UTKFace's .jpg.chip.jpg counts as one), EXT jpg
 * for a JPEG, else png. */
void paste_file_name(char *out, size_t n, const char *dir, const char *path, const char *tag, bool jpeg);
/* A picture's bytes through j into the file out as fmt (PHOTO_*):
 * PASTE_FILE_SKIPPED when they are no picture it can read. */
int paste_file_write(const paste_job *j, const uint8_t *bytes, size_t n, const char *out, int fmt);
/* The picture file path (a regular file) through j into dir, in its own
 * format, named by paste_file_name (the name in out): PASTE_FILE_SKIPPED
 * when it cannot be read or is no picture. */
int paste_file_to_dir(const paste_job *j, const char *path, const char *dir, const char *tag, char *out,
                      size_t n);
