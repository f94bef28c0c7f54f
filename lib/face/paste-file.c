/*
 * paste-file: picture files through a paste_job into files; see
 * paste-file.h.
 */
#include "paste-file.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/fileio.h"
#include "image/image-probe.h"
#include "image/photo.h"

void paste_file_name(char *out, size_t n, const char *dir, const char *path, const char *tag, bool jpeg)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char name[PATH_MAX];
    snprintf(name, sizeof name, "%s", base);
    /* the last extension ("*"), then .chip and .jpg behind it */
    for (const char *ext = "*\0.chip\0.jpg\0"; *ext; ext += strlen(ext) + 1) {
        char *dot = strrchr(name, '.');
        if (dot && dot != name && (*ext == '*' || !strcmp(dot, ext)))
            *dot = 0;
    }
    snprintf(out, n, "%s/%s_%s.%s", dir, name, tag, jpeg ? "jpg" : "png");
}

int paste_file_write(const paste_job *j, const uint8_t *bytes, size_t n, const char *out, int fmt)
{
    uint8_t *enc;
    size_t len;
    if (paste_photo(j, bytes, n, fmt, &enc, &len) != 0)
        return PASTE_FILE_SKIPPED;
    int rc = file_write_all(out, enc, len);
    free(enc);
    return rc != 0 ? -1 : PASTE_FILE_DONE;
}

int paste_file_to_dir(const paste_job *j, const char *path, const char *dir, const char *tag, char *out,
                      size_t n)
{
    uint8_t *bytes = NULL;
    size_t len;
    int w, h, rc = PASTE_FILE_SKIPPED;
    const char *fmt;
    if (file_read_regular(path, PASTE_FILE_MAX_BYTES, &bytes, &len) == 0 &&
        image_probe(bytes, len, &w, &h, &fmt) == 0) {
        bool jpeg = strcmp(fmt, "JPEG") == 0;
        paste_file_name(out, n, dir, path, tag, jpeg);
        rc = paste_file_write(j, bytes, len, out, jpeg ? PHOTO_JPEG : PHOTO_PNG);
    }
    free(bytes);
    return rc;
}
