/*
 * face_template: measure the alignment template of lib/face/face.c, the mean
 * position of the eye centres, nose tip and mouth corners that dlib's
 * landmarker finds on UTKFace crops (200 x 200), over n crops spread
 * evenly through the folder in name order.  Prints the C initialiser of
 * face_template, the spread of each point, and how many were detected.
 *   build/bench/face_template DIR [n]
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "face/face.h"
#include "base/fileio.h"
#include "image/image.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    err_init(argv[0]);
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: face_template DIR [n]\n");
        return 2;
    }
    int want = argc > 2 ? atoi(argv[2]) : 400;
    DIR *d = opendir(argv[1]);
    if (!d)
        die("%s:", argv[1]);
    char **names = NULL;
    size_t nn = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 4 || strcmp(e->d_name + l - 4, ".jpg") != 0)
            continue;
        if (nn == cap) {
            cap = cap ? 2 * cap : 1024;
            char **more = realloc(names, cap * sizeof *names);
            if (!more)
                die("out of memory");
            names = more;
        }
        names[nn++] = strdup(e->d_name);
    }
    closedir(d);
    if (!nn || want < 1)
        die("%s: no .jpg files", argv[1]);
    qsort(names, nn, sizeof *names, cmp_str);
    size_t step = nn / (size_t)want ? nn / (size_t)want : 1;
    face_finder *ff = face_finder_open();
    if (!ff)
        die("%s", err_msg());
    double sum[5][2] = {{0}}, sq[5][2] = {{0}};
    int tried = 0, found = 0;
    for (size_t i = 0; i < nn && tried < want; i += step) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], names[i]);
        uint8_t *bytes;
        size_t n;
        image im = {0};
        if (file_read_all(path, 16 << 20, &bytes, &n) != 0 || image_decode(&im, bytes, n) != 0)
            die("%s: %s", path, err_msg());
        free(bytes);
        if (im.w != FACE_FRAME || im.h != FACE_FRAME) {
            image_free(&im);
            continue;
        }
        tried++;
        face *f;
        int k = face_find(ff, &im, 1, &f);
        if (k < 0)
            die("%s: %s", path, err_msg());
        if (k == 1) {
            float p5[5][2];
            face_points5((const float(*)[2])f[0].pts, p5);
            for (int p = 0; p < 5; p++)
                for (int c = 0; c < 2; c++)
                    sum[p][c] += p5[p][c], sq[p][c] += (double)p5[p][c] * p5[p][c];
            found++;
        }
        free(f);
        image_free(&im);
    }
    if (!found)
        die("no face found in %d crops", tried);
    printf("/* %d of %d crops detected */\n", found, tried);
    for (int p = 0; p < 5; p++) {
        double mx = sum[p][0] / found, my = sum[p][1] / found;
        printf("    {%.2ff, %.2ff}, /* sd %.2f %.2f */\n", mx, my, sqrt(fmax(0, sq[p][0] / found - mx * mx)),
               sqrt(fmax(0, sq[p][1] / found - my * my)));
    }
    face_finder_free(ff);
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    return 0;
}
