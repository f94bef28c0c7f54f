/*
 * check.h: the unit-test harness.  A test file defines functions
 * `static int test_name(void)` returning 0 on success, lists them with
 * CHECK_MAIN(T(test_a), T(test_b)), and gets a main() that prints one TAP
 * line per test ("ok 1 - test_a" / "not ok 2 - test_b") which tests/run.sh
 * counts.  check_tensor() compares float arrays llm.c-style: it prints the
 * first pairs, the max abs/rel difference and OK / NOT OK.
 */
#pragma once

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Big-endian 32-bit store and the CRC-32 PNG uses: for tests that forge
 * PNG chunks with valid checksums around bad contents. */
static inline void check_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}
static inline uint32_t check_crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

#define EXPECT(cond, ...)                                                                                    \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "# %s:%d: expected %s: ", __FILE__, __LINE__, #cond);                            \
            fprintf(stderr, __VA_ARGS__);                                                                    \
            fprintf(stderr, "\n");                                                                           \
            return 1;                                                                                        \
        }                                                                                                    \
    } while (0)

/* |got-want| <= atol + rtol*|want| elementwise.  Returns 0 when all agree. */
static inline int check_tensor(const char *label, const float *got, const float *want, long n, double atol,
                               double rtol)
{
    double maxabs = 0, maxrel = 0;
    long bad = 0, first_bad = -1;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        double r = d / (fabs((double)want[i]) + 1e-12);
        if (d > maxabs || isnan(d))
            maxabs = isnan(d) ? INFINITY : d;
        if (fabs((double)want[i]) > 1e-6 && r > maxrel)
            maxrel = r;
        if (!(d <= atol + rtol * fabs((double)want[i]))) {
            if (first_bad < 0)
                first_bad = i;
            bad++;
        }
    }
    printf("# %-40s n=%-8ld max|d|=%.3g max rel=%.3g %s\n", label, n, maxabs, maxrel, bad ? "NOT OK" : "OK");
    if (bad)
        printf("#   first bad [%ld]: got %.9g want %.9g (%ld bad)\n", first_bad, (double)got[first_bad],
               (double)want[first_bad], bad);
    return bad ? 1 : 0;
}

struct check_case {
    const char *name;
    int (*fn)(void);
};
#define T(f)                                                                                                 \
    {                                                                                                        \
#f, f                                                                                                \
    }

/* A test returning CHECK_SKIP is reported as "ok N - name # SKIP no torch". */
#define CHECK_SKIP 77

/* Run the cases (only the one named in argv[1], if any), printing TAP lines;
 * returns the exit status: 1 if any case failed. */
static inline int check_run(const struct check_case *cases, int n, int argc, char **argv)
{
    int failed = 0;
    printf("1..%d\n", n);
    for (int i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], cases[i].name) != 0) {
            printf("ok %d - %s # SKIP not selected\n", i + 1, cases[i].name);
            continue;
        }
        fflush(stdout);
        int rc = cases[i].fn();
        if (rc == CHECK_SKIP)
            printf("ok %d - %s # SKIP no torch\n", i + 1, cases[i].name);
        else
            printf("%sok %d - %s\n", rc ? "not " : "", i + 1, cases[i].name);
        fflush(stdout);
        failed += rc != 0 && rc != CHECK_SKIP;
    }
    return failed ? 1 : 0;
}

#define CHECK_MAIN(...)                                                                                      \
    int main(int argc, char **argv)                                                                          \
    {                                                                                                        \
        static const struct check_case cases[] = {__VA_ARGS__};                                              \
        return check_run(cases, (int)(sizeof cases / sizeof cases[0]), argc, argv);                          \
    }
