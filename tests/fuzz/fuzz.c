/* fuzz: the helpers of fuzz.h. */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/err.h"

void fuzz_fail_(const char *cond, const char *file, int line)
{
    fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, cond);
    abort();
}

const char *fuzz_path(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz-input", MFD_CLOEXEC);
        FUZZ_ASSERT(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    /* Readers open the path afresh (their own offset) and may mmap it, so
     * the file is truncated to the new size rather than appended to. */
    FUZZ_ASSERT(ftruncate(fd, 0) == 0 && ftruncate(fd, (off_t)size) == 0);
    for (size_t off = 0; off < size;) {
        ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);
        FUZZ_ASSERT(n > 0);
        off += (size_t)n;
    }
    return path;
}

void fuzz_refused(const char *what)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "%s: %s\n", what, err_msg());
    if (!*err_msg()) {
        fprintf(stderr, "%s refused its input without a message\n", what);
        abort();
    }
    fuzz_clear_msg();
}

void fuzz_clear_msg(void)
{
    err_set("%s", "");
}
