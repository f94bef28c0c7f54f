/* omp-env: see omp-env.h.  Runs from .init_array, before main(). */
#include "omp-env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int omp_env_threads(void)
{
    const char *s = getenv("AGING_THREADS");
    if (!s || !*s)
        return 0;
    char *end;
    long n = strtol(s, &end, 10);
    return *end || n < 1 || n > 1024 ? -1 : (int)n;
}

static void omp_env_apply(int argc, char **argv, char **envp)
{
    (void)argc;
    (void)envp;
    int changed = 0;
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        changed = 1;
    }
    int n = omp_env_threads();
    if (n < 0) { /* before main(): the tool's own err_init has not run */
        const char *name = argv && argv[0] ? strrchr(argv[0], '/') : NULL;
        fprintf(stderr, "%s: AGING_THREADS=%s is not a thread count (1 to 1024)\n",
                name              ? name + 1
                : argv && argv[0] ? argv[0]
                                  : "aging",
                getenv("AGING_THREADS"));
        _exit(2);
    }
    if (n > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", n);
        const char *cur = getenv("OMP_NUM_THREADS");
        if (!cur || strcmp(cur, v) != 0) {
            setenv("OMP_NUM_THREADS", v, 1);
            changed = 1;
        }
    }
    /* executed again, the program finds both set as wanted: no second time */
    if (!changed || !argv || !argv[0])
        return;
    /* readlink, not /proc/self/exe itself: under valgrind the link names the
     * program, while the file would be valgrind's own */
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0 || (size_t)len >= sizeof exe - 1)
        return;
    exe[len] = 0;
    execv(exe, argv); /* on failure, runs on with the runtime's defaults */
}

/* glibc calls .init_array entries of the program with (argc, argv, envp). */
__attribute__((used, section(".init_array"))) static void (*const omp_env_hook)(int, char **,
                                                                                char **) = omp_env_apply;
