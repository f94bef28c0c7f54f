/*
 * num: integer parsing with range checks (num.h).
 */
#include "num.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

#include "err.h"

int num_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    /* strtoll skips leading white space; a stored number has none */
    if (!s || !*s || isspace((unsigned char)*s))
        return err_set("'%.40s' is not an integer", s ? s : "");
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end)
        return err_set("'%.40s' is not an integer", s);
    if (errno == ERANGE || v < min || v > max)
        return err_set("'%.40s' is out of range [%" PRId64 ", %" PRId64 "]", s, min, max);
    *out = v;
    return 0;
}

int num_whole_i64(double v, int64_t min, int64_t max, int64_t *out)
{
    if (!isfinite(v) || v != floor(v))
        return err_set("%.17g is not an integer", v);
    if (v < (double)min || v > (double)max)
        return err_set("%.17g is out of range [%" PRId64 ", %" PRId64 "]", v, min, max);
    *out = (int64_t)v;
    return 0;
}
