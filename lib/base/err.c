/*
 * err: messages on stderr prefixed with the program name, and a per-thread
 * buffer that library functions fill instead of printing or exiting.
 */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *progname = "aging";
static _Thread_local char last[1024];

void err_init(const char *argv0)
{
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
    progname = slash ? slash + 1 : (argv0 ? argv0 : "aging");
}

const char *err_progname(void)
{
    return progname;
}

/* Format into buf; a trailing ':' asks for strerror(saved errno). */
static void format_(char *buf, size_t n, int saved, const char *fmt, va_list ap)
{
    vsnprintf(buf, n, fmt, ap);
    size_t len = strlen(fmt);
    if (len && fmt[len - 1] == ':') {
        size_t used = strlen(buf);
        snprintf(buf + used, n - used, " %s", strerror(saved));
    }
}

void die(const char *fmt, ...)
{
    int saved = errno;
    char buf[1200];
    va_list ap;
    va_start(ap, fmt);
    format_(buf, sizeof buf, saved, fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "%s: %s\n", progname, buf);
    exit(1);
}

void warn(const char *fmt, ...)
{
    int saved = errno;
    char buf[1200];
    va_list ap;
    va_start(ap, fmt);
    format_(buf, sizeof buf, saved, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", progname, buf);
}

int err_set(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    format_(last, sizeof last, saved, fmt, ap);
    va_end(ap);
    return -1;
}

int err_wrap(const char *fmt, ...)
{
    char old[sizeof last];
    memcpy(old, last, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last, sizeof last, fmt, ap);
    va_end(ap);
    /* Append ": old" by hand; a too-long message is cut, never overflowed. */
    size_t used = strlen(last);
    for (const char *p = ": "; *p && used + 1 < sizeof last; p++)
        last[used++] = *p;
    for (const char *p = old; *p && used + 1 < sizeof last; p++)
        last[used++] = *p;
    last[used] = 0;
    return -1;
}

const char *err_msg(void)
{
    return last;
}

void err_close_stdout(void)
{
    if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0)
        die("writing output failed:");
}
