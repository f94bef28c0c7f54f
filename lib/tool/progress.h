/*
 * progress: one live status line on a terminal for long commands
 * (training, evaluation, FID features, translation), with a rate and an
 * ETA.  On anything but a terminal it prints nothing, so logs and pipes
 * stay clean.
 *
 *   progress *p = progress_new(stderr);          // NULL-safe to use after
 *   progress_line(p, "step %d/%d", i, n);        // redrawn at most 5 times a second
 *   progress_end(p);                             // the last line stays, newline
 *   progress_free(p);
 */
#pragma once

#include <stdio.h>

typedef struct progress progress;

/* A progress line on f, or NULL when f is not a terminal (every function
 * below accepts NULL and then does nothing).  AGING_PROGRESS=0 turns it off,
 * AGING_PROGRESS=1 on for any f (tests). */
progress *progress_new(FILE *f);
void progress_free(progress *p); /* NULL-safe; ends the line first */

/* Redraw the line with this text, unless it was drawn less than 0.2 s ago. */
void progress_line(progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Draw the last text (if any) once more and end the line, so output that
 * follows starts on a fresh one. */
void progress_end(progress *p);

/* Seconds as "42s", "3m05s" or "1h02m" into buf; "?" when not finite or
 * negative. */
const char *progress_eta(char *buf, size_t n, double seconds);
/* Monotonic seconds since an arbitrary start. */
double progress_now(void);
