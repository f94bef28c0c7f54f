/*
 * device: backend selection by name, and the run-time loading of the CUDA
 * backend (dlopen), so that a build made on a machine with nvcc still runs
 * where the CUDA runtime or cuDNN is missing.  The library is never
 * unloaded: backends opened from it live until the process exits.
 */
#include "device.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu/cpu-dnnl.h"
#include "base/err.h"
#include "base/fileio.h"

typedef int (*count_fn)(void);
typedef backend_t (*open_fn)(int);

struct cuda_lib {
    count_fn count;
    open_fn open;
    char why[512]; /* why it could not be loaded */
};

/* "cuda" -> 0, "cuda:N" -> N, anything else -> -1 */
static int cuda_index(const char *name)
{
    if (strcmp(name, "cuda") == 0)
        return 0;
    if (strncmp(name, "cuda:", 5) != 0 || !name[5])
        return -1;
    char *end;
    long v = strtol(name + 5, &end, 10);
    return *end || v < 0 || v > 255 ? -1 : (int)v;
}

int device_known(const char *name)
{
    return strcmp(name, "cpu") == 0 || strcmp(name, "auto") == 0 || cuda_index(name) >= 0;
}

static int try_load(struct cuda_lib *L, const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        /* a missing file is expected for most candidates: keep the first real failure */
        if (access(path, F_OK) == 0 || !L->why[0])
            snprintf(L->why, sizeof L->why, "%s", e ? e : path);
        return -1;
    }
    L->count = (count_fn)(uintptr_t)dlsym(h, "backend_cuda_device_count");
    L->open = (open_fn)(uintptr_t)dlsym(h, "backend_cuda_open");
    if (!L->count || !L->open) {
        snprintf(L->why, sizeof L->why, "%s: not an aging CUDA backend", path);
        return -1;
    }
    return 0;
}

static struct cuda_lib L; /* loaded once per process */

static const char *cuda_lib_why(void)
{
    return L.why;
}

static struct cuda_lib *cuda_lib(void)
{
    static int tried;
    if (tried)
        return L.open ? &L : NULL;
    tried = 1;
    const char *env = getenv("AGING_CUDA_LIB");
    if (env && *env)
        return try_load(&L, env) == 0 ? &L : NULL;
    char exe[PATH_MAX];
    if (file_exe_dir(exe, sizeof exe) == 0) {
        static const char *const rel[] = {"../build/libaging-cuda.so", "../libaging-cuda.so",
                                          "../lib/aging/libaging-cuda.so"};
        for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
            char path[PATH_MAX + 64];
            snprintf(path, sizeof path, "%s/%s", exe, rel[i]);
            if (try_load(&L, path) == 0)
                return &L;
        }
    }
    if (!L.why[0])
        snprintf(L.why, sizeof L.why, "this build has no CUDA backend (built without nvcc)");
    return NULL;
}

/* A GPU driver is present even though the backend may not load. */
static int driver_present(void)
{
    return access("/dev/nvidia0", F_OK) == 0 || access("/proc/driver/nvidia/version", F_OK) == 0;
}

backend_t device_open(const char *name)
{
    if (!name) {
        const char *env = getenv("AGING_DEVICE");
        if (env && *env && !device_known(env)) {
            err_set("AGING_DEVICE=%s: unknown device (expected cpu, cuda, cuda:N or auto)", env);
            return NULL;
        }
        name = env && *env ? env : "auto";
    }
    if (!device_known(name)) {
        err_set("unknown device '%s' (expected cpu, cuda, cuda:N or auto)", name);
        return NULL;
    }
    if (strcmp(name, "cpu") == 0)
        return backend_cpu_init();
    struct cuda_lib *lib = cuda_lib();
    if (strcmp(name, "auto") == 0) {
        if (lib && (lib->count() > 0 || driver_present())) {
            /* a driver but no device counted: open(0) says why (e.g. the driver is too old) */
            backend_t be = lib->open(0);
            if (be)
                return be;
            fprintf(stderr, "device auto: the GPU could not be opened (%s); using the CPU\n", err_msg());
        } else if (!lib && driver_present()) {
            fprintf(stderr,
                    "device auto: a GPU driver is present but the CUDA backend did not load (%s); "
                    "using the CPU\n",
                    cuda_lib_why());
        }
        return backend_cpu_init();
    }
    if (!lib) {
        err_set("--device %s: the CUDA backend is not available: %s", name, cuda_lib_why());
        return NULL;
    }
    return lib->open(cuda_index(name));
}

static int is_cpu(backend_t be)
{
    return strcmp(backend_name(be), "cpu") == 0;
}

backend_t device_open_precision(const char *name, enum backend_precision p)
{
    backend_t be = device_open(name);
    if (be && backend_set_precision(be, p) != 0) {
        backend_free(be);
        return NULL;
    }
    static int told;
    if (be && p == BACKEND_BF16 && is_cpu(be) && !cpu_dnnl_bf16_available() && !told) {
        told = 1;
        const char *env = getenv("AGING_CPU_BF16");
        if (env && strcmp(env, "0") == 0)
            warn("AGING_CPU_BF16=0: bf16 is emulated (slow)");
        else
            warn("this CPU has no bf16 units; bf16 is emulated (slow)");
    }
    return be;
}

int device_precision_arg(const char *arg, enum backend_precision *p, int *is_auto)
{
    *is_auto = strcmp(arg, "auto") == 0;
    return *is_auto ? 0 : backend_precision_parse(arg, p);
}

enum backend_precision device_inference_precision(backend_t be)
{
    return is_cpu(be) ? BACKEND_FP32 : BACKEND_BF16;
}
