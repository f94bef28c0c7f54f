/*
 * fileio: read a file or stdin whole; write one whole (lib/base/fileout.c).
 */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "fileout.h"

/* Read fd (named name in messages) to its end; closes it unless stdin. */
static int read_fd_all_(int fd, const char *name, size_t max_bytes, uint8_t **data, size_t *n)
{
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            if (fd)
                close(fd);
            return err_set("out of memory");
        }
        if (len == cap) {
            if (cap > max_bytes) {
                free(buf);
                if (fd)
                    close(fd);
                return err_set("%s: larger than %zu bytes", name, max_bytes);
            }
            uint8_t *more = realloc(buf, cap * 2);
            if (!more)
                free(buf);
            buf = more;
            cap *= 2;
            continue;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            if (fd)
                close(fd);
            errno = e;
            return err_set("%s:", name);
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (fd)
        close(fd);
    if (len > max_bytes) {
        free(buf);
        return err_set("%s: larger than %zu bytes", name, max_bytes);
    }
    *data = buf;
    *n = len;
    return 0;
}

int file_read_all(const char *path, size_t max_bytes, uint8_t **data, size_t *n)
{
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set("%s:", path);
    return read_fd_all_(fd, strcmp(path, "-") ? path : "stdin", max_bytes, data, n);
}

int file_read_regular(const char *path, size_t max_bytes, uint8_t **data, size_t *n)
{
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return err_set("%s:", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return err_set("%s:", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set("%s: not a regular file", path);
    }
    /* Refused from its size, before reading max_bytes of it. */
    if ((uintmax_t)st.st_size > max_bytes) {
        close(fd);
        return err_set("%s: larger than %zu bytes", path, max_bytes);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        close(fd);
        return err_set("%s:", path);
    }
    return read_fd_all_(fd, path, max_bytes, data, n);
}

int file_write_all(const char *path, const uint8_t *data, size_t n)
{
    fileout *f = fileout_open(path);
    if (!f)
        return -1;
    int rc = fileout_write(f, data, n);
    return fileout_close(f, rc == 0) != 0 ? -1 : rc;
}

int file_exe_dir(char *buf, size_t n)
{
    if (n < 2)
        return err_set("file_exe_dir: buffer too small");
    ssize_t len = readlink("/proc/self/exe", buf, n - 1);
    if (len <= 0 || (size_t)len >= n - 1)
        return err_set("cannot read /proc/self/exe:");
    buf[len] = 0;
    char *slash = strrchr(buf, '/');
    if (!slash)
        return err_set("/proc/self/exe is not a path: %s", buf);
    *slash = 0;
    return 0;
}
