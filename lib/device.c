/*
 * device: backend selection by name.  Only the CPU backend exists in this
 * build; the names of the others are known so that a command line written
 * for a GPU machine fails with a clear message instead of a usage error.
 */
#include "device.h"

#include <string.h>

#include "err.h"

int device_known(const char *name)
{
    return strcmp(name, "cpu") == 0 || strcmp(name, "cuda") == 0 || strcmp(name, "auto") == 0;
}

backend_t device_open(const char *name)
{
    if (strcmp(name, "cuda") == 0) {
        err_set("--device cuda: this build has no CUDA backend (use --device cpu)");
        return NULL;
    }
    if (!device_known(name)) {
        err_set("unknown device '%s' (expected cpu, cuda or auto)", name);
        return NULL;
    }
    return backend_cpu_init();
}
