/*
 * cli: option-value parsing and usage errors for tools (exit status 2).
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/err.h"
#include "base/num.h"

void cli_put_escaped(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '\\': fputs("\\\\", f); break;
        case '\t': fputs("\\t", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\%03o", *p);
            else
                putc(*p, f);
        }
    }
}

void cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", err_progname());
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", err_progname());
    exit(2);
}

int64_t cli_int(const char *opt, const char *s, int64_t min, int64_t max)
{
    int64_t v = 0;
    if (num_parse_i64(s, min, max, &v))
        cli_usage_error("%s: %s", opt, err_msg());
    return v;
}

double cli_double(const char *opt, const char *s, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || isnan(v))
        cli_usage_error("%s: '%s' is not a number", opt, s);
    if (v < min || v > max)
        cli_usage_error("%s: %g is out of range [%g, %g]", opt, v, min, max);
    return v;
}

void cli_version(void)
{
    printf("%s (aging-cyclegan) %s\n", err_progname(), AGING_VERSION);
    exit(0);
}
