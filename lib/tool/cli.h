/*
 * cli: the shared pieces of every tool's command line.  Usage errors print
 * "tool: message" and "Try 'tool --help'." on stderr and exit 2; numbers are
 * parsed whole and range-checked (no silent atoi).  These functions exit:
 * they are for tools/ only, never for library code.
 */
#pragma once

#include <stdint.h>
#include <stdio.h>

void cli_usage_error(const char *fmt, ...) __attribute__((__noreturn__, __format__(printf, 1, 2)));
/* The integer in s, which must lie in [min, max], for option `opt`. */
int64_t cli_int(const char *opt, const char *s, int64_t min, int64_t max);
double cli_double(const char *opt, const char *s, double min, double max);
/* Write s to f with a backslash, tab, newline, carriage return or other
 * control byte escaped C-style (\\, \t, \n, \r, \ooo in octal), as `ls -b`
 * does: a name or value from a file can then neither end a line nor forge
 * another one in a listing that scripts read. */
void cli_put_escaped(FILE *f, const char *s);
/* Print the version line shared by all tools and exit 0. */
void cli_version(void) __attribute__((__noreturn__));

#define AGING_VERSION "0.1.0"
