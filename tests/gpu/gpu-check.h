/*
 * gpu-check.h: what the device tests (tests/gpu/test_*.c) share on top of
 * tests/unit/check.h.  Each test runs the same work on two backends, the
 * CPU reference and the device under test (env AGING_GPU_DEVICE, default
 * "cuda"; "cpu" compares the CPU with itself, which checks the harness on a
 * machine without a GPU), and compares what they computed.
 *
 *   GPU_MAIN(T(test_a), T(test_b))   main(): opens both backends, then TAP
 *
 * When the device cannot be opened the file prints "1..0 # SKIP <why>" and
 * exits 0, unless AGING_GPU_REQUIRE=1 (the device script sets it), where a
 * missing device is a failure.  Tolerances are scaled: |got - want| <= tol *
 * max(scale_min, max|want|) over the tensor (gpu_cmp_host), so one number per op
 * reads as "a fraction of the tensor's magnitude".
 */
#pragma once

#include "check.h"

#include <stdarg.h>

#include "backend/backend.h"
#include "tool/device.h"
#include "base/err.h"

/* [0] the CPU reference, [1] the device under test */
static backend_t gpu_be[2];

/* Abort the whole file (allocation or transfer failures): TAP "Bail out!". */
static void gpu_bail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void gpu_bail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("Bail out! ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    exit(1);
}

/* n floats of device memory on be holding host (NULL: zeros). */
static inline float *gpu_put(backend_t be, const float *host, long n)
{
    float *p = backend_alloc(be, (size_t)n * sizeof(float));
    if (!p || (host && backend_upload(be, p, host, (size_t)n * sizeof(float)) != 0))
        gpu_bail("%s: %ld floats: %s", backend_name(be), n, err_msg());
    return p;
}

/* A malloc'ed host copy of n floats of device memory (caller frees). */
static inline float *gpu_fetch(backend_t be, const void *dev, long n)
{
    float *h = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!h || backend_download(be, h, dev, (size_t)n * sizeof(float)) != 0)
        gpu_bail("%s: download of %ld floats: %s", backend_name(be), n, err_msg());
    return h;
}

static inline double gpu_maxabs(const float *x, long n)
{
    double m = 0;
    for (long i = 0; i < n; i++)
        m = fabs((double)x[i]) > m ? fabs((double)x[i]) : m;
    return m;
}

/* got (device) against want (reference), both host arrays of n floats:
 * |d| <= tol * max(scale_min, max|want|); tol 0 asks for equal bits (up to the
 * sign of zero).  Prints one "# label ..." line with the measured maximum. */
static inline int gpu_cmp_host(const char *label, const float *got, const float *want, long n, double tol,
                               double scale_min)
{
    double scale = gpu_maxabs(want, n);
    char text[160];
    snprintf(text, sizeof text, "%s [%.0e x %.3g]", label, tol, scale > scale_min ? scale : scale_min);
    return check_tensor(text, got, want, n, tol * (scale > scale_min ? scale : scale_min), 0);
}

/* Open the reference and the device; 0, or -1 with the reason in why. */
static inline int gpu_open(char *why, size_t len)
{
    const char *name = getenv("AGING_GPU_DEVICE");
    if (!name || !*name)
        name = "cuda";
    gpu_be[0] = backend_cpu_init();
    if (!gpu_be[0]) {
        snprintf(why, len, "the CPU backend: %s", err_msg());
        return -1;
    }
    gpu_be[1] = device_open(name);
    if (!gpu_be[1]) {
        snprintf(why, len, "device %s: %s", name, err_msg());
        return -1;
    }
    return 0;
}

static inline int gpu_main(const struct check_case *cases, int n, int argc, char **argv)
{
    err_init(argv[0]);
    char why[600];
    if (gpu_open(why, sizeof why) != 0) {
        const char *req = getenv("AGING_GPU_REQUIRE");
        if (req && strcmp(req, "1") == 0) {
            printf("1..1\nnot ok 1 - open the device (AGING_GPU_REQUIRE=1): %s\n", why);
            return 1;
        }
        printf("1..0 # SKIP %s\n", why);
        backend_free(gpu_be[0]);
        return 0;
    }
    printf("# device under test: %s, reference: %s\n", backend_name(gpu_be[1]), backend_name(gpu_be[0]));
    int status = check_run(cases, n, argc, argv);
    backend_free(gpu_be[1]);
    backend_free(gpu_be[0]);
    return status;
}

#define GPU_MAIN(...)                                                                                        \
    int main(int argc, char **argv)                                                                          \
    {                                                                                                        \
        static const struct check_case cases[] = {__VA_ARGS__};                                              \
        return gpu_main(cases, (int)(sizeof cases / sizeof cases[0]), argc, argv);                           \
    }
