/*
 * zipmem: zip archives (.npz, torch .pth) built in memory with libzip and
 * written out through lib/base/fileout.h.  libzip's own zip_open(path) writes a
 * temporary PATH.XXXXXX and renames it over path, which would replace a
 * FIFO or /dev/stdout and leave its temporary file behind after a crash;
 * and it seeks back to patch headers, so it cannot stream to a pipe.  The
 * price is one copy of the archive in memory while it is written.
 *
 *   zip_source_t *src;
 *   zip_t *za = zipmem_new(&src, path);
 *   ... zip_file_add(za, ...) ...
 *   rc = ok ? zipmem_save(za, src, path) : (zipmem_discard(za, src), -1);
 */
#pragma once

#include <zip.h>

/* A new, empty archive in memory; src receives its buffer.  NULL with
 * err_msg() naming path. */
zip_t *zipmem_new(zip_source_t **src, const char *path);
/* Finish the archive and write it to path; frees za and src either way.
 * -1 with err_msg() naming path. */
int zipmem_save(zip_t *za, zip_source_t *src, const char *path);
/* Drop an archive that will not be written. */
void zipmem_discard(zip_t *za, zip_source_t *src);
