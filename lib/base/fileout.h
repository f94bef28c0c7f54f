/*
 * fileout: writing one output file so that a failure or a crash never
 * leaves a half-written file, and what is not a plain file is never
 * replaced.  Every tool output that is a file goes through here (streams,
 * checkpoints, FID statistics, images, .pth and .npz archives).
 *
 * What fileout_open(path) writes to:
 *   "-", /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N
 *       the descriptor the process already has (bash's `-o >(cmd)` passes
 *       /dev/fd/N), written in place at its offset with its flags, so a
 *       `>>` redirection still appends.
 *   a regular file, or a name that does not exist yet
 *       a temporary file beside it, NAME.tmp.PID.XXXXXX, renamed over NAME
 *       by fileout_close(f, true).  A symbolic link is followed: the file
 *       it points to is replaced and the link stays a link.  A new file
 *       gets mode 0666 less the umask; a replaced file keeps its mode.
 *   anything else that exists: a FIFO, a character device (/dev/null), a
 *       socket's or terminal's node
 *       opened for writing and written in place: never replaced, never
 *       truncated.  A directory is an error.
 *
 * Temporary files never outlive their writer: fileout_close(f, false)
 * removes one, exit() (die) removes those still open, and a writer killed
 * with SIGKILL leaves one that the next fileout_open of the same name (or
 * fileout_clean_stale) removes.  A temporary file is stale when the process
 * named in it is gone and no one holds its flock(2) lock, which its writer
 * holds from creation to rename; so two runs writing in one folder, even
 * the same name, never remove each other's.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct fileout fileout;

/* Open path for writing as above.  NULL with err_msg() naming path. */
fileout *fileout_open(const char *path);
/* Write all n bytes (across partial writes and EINTR).  -1 with err_msg()
 * ("writing PATH failed: ...", "stdout" for "-"). */
int fileout_write(fileout *f, const void *p, size_t n);
/* ok=true: finish (a temporary file is synced and renamed into place);
 * ok=false: abandon (a temporary file is removed; data already written to a
 * FIFO or device stays written).  Frees f; NULL-safe; -1 with err_msg() if
 * finishing failed (nothing is left behind then either). */
int fileout_close(fileout *f, bool ok);
/* Whether f replaces a file on success (true) or writes in place (false). */
bool fileout_replaces(const fileout *f);

/* Remove the stale temporary files of path (the name it resolves to), as
 * fileout_open does; for a tool to reclaim the space at its start rather
 * than at its first save.  Best effort: errors are ignored. */
void fileout_clean_stale(const char *path);
