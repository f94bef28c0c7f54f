/*
 * num: whole-string integer parsing with overflow and range checks, shared
 * by command-line options (lib/tool/cli.h) and numbers stored as text in files
 * (checkpoint metadata such as "epoch" or "step").  strtoll alone clamps an
 * overflow to LLONG_MAX and accepts "12abc" when the end is not checked;
 * atoi has undefined behaviour on overflow.
 *
 *   int64_t epoch;
 *   if (num_parse_i64(s, 0, 1000000, &epoch))
 *       return err_wrap("%s: metadata 'epoch'", path);
 *   // err_msg(): "path: metadata 'epoch': '99999999999999999999999' is out of range [0, 1000000]"
 */
#pragma once

#include <stdint.h>

/* The decimal integer that is the whole of s (optional sign, no spaces),
 * which must lie in [min, max].  0 and *out set, or -1 with err_msg()
 * "'x' is not an integer" / "'x' is out of range [min, max]" (*out left
 * unchanged).  An overflow of int64 counts as out of range. */
int num_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* A double that must be a whole number in [min, max] (|min|, |max| <=
 * 2^53, where doubles hold integers exactly), e.g. a JSON number.  Same
 * contract as num_parse_i64; NaN and infinities are out of range. */
int num_whole_i64(double v, int64_t min, int64_t max, int64_t *out);
