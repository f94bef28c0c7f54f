/*
 * progress: a status line redrawn in place with carriage returns.
 */
#include "progress.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct progress {
    FILE *f;
    double last; /* when the line was last drawn */
    char text[256];
    int drawn; /* a line is on the screen, not yet ended */
};

double progress_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

progress *progress_new(FILE *f)
{
    const char *env = getenv("AGING_PROGRESS");
    int on = env && *env ? strcmp(env, "0") != 0 : isatty(fileno(f));
    if (!on)
        return NULL;
    progress *p = calloc(1, sizeof *p);
    if (p) {
        p->f = f;
        p->last = -1;
    }
    return p;
}

static void draw_(progress *p)
{
    /* \033[K clears what a longer earlier line left on the right */
    fprintf(p->f, "\r%s\033[K", p->text);
    fflush(p->f);
    p->drawn = 1;
}

void progress_line(progress *p, const char *fmt, ...)
{
    if (!p)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->text, sizeof p->text, fmt, ap);
    va_end(ap);
    double t = progress_now();
    if (p->last >= 0 && t - p->last < 0.2)
        return;
    p->last = t;
    draw_(p);
}

void progress_end(progress *p)
{
    if (!p || !p->text[0])
        return;
    draw_(p);
    fputc('\n', p->f);
    fflush(p->f);
    p->text[0] = 0;
    p->drawn = 0;
    p->last = -1;
}

void progress_free(progress *p)
{
    if (!p)
        return;
    if (p->drawn)
        progress_end(p);
    free(p);
}

const char *progress_eta(char *buf, size_t n, double s)
{
    if (!isfinite(s) || s < 0)
        snprintf(buf, n, "?");
    else if (s < 60)
        snprintf(buf, n, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    return buf;
}
