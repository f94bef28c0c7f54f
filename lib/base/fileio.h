/*
 * fileio: whole-file reads and whole-file writes.  "-" means stdin or
 * stdout.  Writes go through lib/base/fileout.h: a regular file is replaced
 * atomically (a failure never leaves a half-written one), a FIFO, a device
 * or /dev/fd/N is written in place.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Read all of path (or stdin for "-") into a malloc'd buffer the caller
 * frees; refuses files larger than max_bytes.  -1 with err_msg() on error. */
int file_read_all(const char *path, size_t max_bytes, uint8_t **data, size_t *n);
/* The same for a regular file only: a FIFO, device or folder at path is an
 * error ("not a regular file"), never a read that waits for ever. */
int file_read_regular(const char *path, size_t max_bytes, uint8_t **data, size_t *n);
/* Write n bytes to path as lib/base/fileout.h says.  -1 with err_msg(). */
int file_write_all(const char *path, const uint8_t *data, size_t n);
/* The folder of the running executable (from /proc/self/exe) into buf;
 * -1 when it cannot be read or does not fit.  Data that ships with the
 * tools (the CUDA backend, the model) is found relative to it. */
int file_exe_dir(char *buf, size_t n);
