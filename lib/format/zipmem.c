/*
 * zipmem: a libzip archive over a growable buffer source, copied to the
 * output once complete (lib/format/zipmem.h).
 */
#include "zipmem.h"

#include <stdlib.h>

#include "base/err.h"
#include "base/fileout.h"

zip_t *zipmem_new(zip_source_t **src, const char *path)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_t *za = NULL;
    if ((*src = zip_source_buffer_create(NULL, 0, 0, &ze)) &&
        !(za = zip_open_from_source(*src, ZIP_TRUNCATE, &ze))) {
        zip_source_free(*src);
        *src = NULL;
    }
    if (za)
        zip_source_keep(*src); /* ours, to read after zip_close */
    else
        err_set("%s: %s", path, zip_error_strerror(&ze));
    zip_error_fini(&ze);
    return za;
}

void zipmem_discard(zip_t *za, zip_source_t *src)
{
    zip_discard(za);
    zip_source_free(src);
}

int zipmem_save(zip_t *za, zip_source_t *src, const char *path)
{
    if (zip_close(za) != 0) {
        err_set("%s: %s", path, zip_strerror(za));
        zipmem_discard(za, src);
        return -1;
    }
    if (zip_source_open(src) != 0) {
        err_set("%s: %s", path, zip_error_strerror(zip_source_error(src)));
        zip_source_free(src);
        return -1;
    }
    enum { CHUNK = 1 << 16 };
    char *buf = malloc(CHUNK);
    fileout *f = buf ? fileout_open(path) : NULL;
    int rc = f ? 0 : buf ? -1 : err_set("out of memory");
    zip_int64_t n;
    while (rc == 0 && (n = zip_source_read(src, buf, CHUNK)) != 0) {
        if (n < 0)
            rc = err_set("%s: %s", path, zip_error_strerror(zip_source_error(src)));
        else
            rc = fileout_write(f, buf, (size_t)n);
    }
    free(buf);
    zip_source_close(src);
    zip_source_free(src);
    return fileout_close(f, rc == 0) != 0 ? -1 : rc;
}
