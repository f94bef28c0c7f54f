/*
 * face_time: what translate --face costs on a 1024x768 photo beside the
 * generator: face search (detection + landmarks), the aligned crop (warp),
 * the model's framing, the paste back, and one generator forward at the
 * model's size, each the median of n runs after one warm-up.  The photo is
 * PHOTO scaled to 768 px high and centred on a 1024x768 canvas (borders
 * reflected).  Prints one line per stage in milliseconds.
 *   face_time PHOTO CKPT [runs=5]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "bench.h"
#include "base/err.h"
#include "face/face.h"
#include "base/fileio.h"
#include "image/image.h"
#include "nn/infer.h"
#include "image/transform.h"

int main(int argc, char **argv)
{
    err_init(argv[0]);
    if (argc < 3)
        die("usage: face_time PHOTO CKPT [runs]");
    int runs = argc > 3 ? atoi(argv[3]) : 5;
    if (runs < 1 || runs > 100)
        die("runs: 1 to 100");
    uint8_t *bytes;
    size_t n;
    image ph = {0}, scene = {0};
    if (file_read_all(argv[1], 64 << 20, &bytes, &n) != 0 || image_decode(&ph, bytes, n) != 0)
        die("%s: %s", argv[1], err_msg());
    free(bytes);
    double k = (double)ph.h / 768, M[6] = {k, 0, ph.w / 2.0 - 512 * k, 0, k, 0};
    if (face_warp(&scene, &ph, M, 1024, 768) != 0)
        die("%s", err_msg());
    face_finder *ff = face_finder_open();
    backend_t be = backend_cpu_init();
    infer *g = be ? infer_open(argv[2], "G.", be) : NULL;
    if (!ff || !g)
        die("%s", err_msg());
    int size, resize;
    infer_framing(g, &size, &resize);
    if (size <= 0)
        size = 256;
    size_t nx = (size_t)3 * size * size;
    float *x = malloc(nx * sizeof *x), *y = malloc(nx * sizeof *y);
    double *t[5];
    for (int s = 0; s < 5; s++)
        t[s] = malloc((size_t)runs * sizeof(double));
    int faces_found = 0;
    for (int r = -1; r < runs; r++) {
        face *f;
        image crop = {0},
              out = {.w = scene.w, .h = scene.h, .c = 3, .px = malloc((size_t)scene.w * scene.h * 3)};
        memcpy(out.px, scene.px, (size_t)scene.w * scene.h * 3);
        double t0 = bench_now();
        int nf = face_find(ff, &scene, 8, &f);
        if (nf < 1)
            die("no face found in the 1024x768 photo%s%s", nf < 0 ? ": " : "", nf < 0 ? err_msg() : "");
        double t1 = bench_now();
        if (face_warp(&crop, &scene, f[0].A, FACE_FRAME, FACE_FRAME) != 0)
            die("%s", err_msg());
        double t2 = bench_now();
        if (transform_eval(&crop, size, resize) != 0)
            die("%s", err_msg());
        image_to_chw_f32(x, &crop);
        double t3 = bench_now();
        if (infer_run(g, x, y, size, size) != 0)
            die("%s", err_msg());
        double t4 = bench_now(), B[6];
        face_model_to(B, f[0].A, size, resize);
        if (paste_change(&out, x, y, size, B, PASTE_FACE, 1.0f) != 0)
            die("%s", err_msg());
        double t5 = bench_now();
        if (r >= 0) {
            t[0][r] = t1 - t0, t[1][r] = t2 - t1, t[2][r] = t3 - t2, t[3][r] = t5 - t4, t[4][r] = t4 - t3;
        }
        faces_found = nf;
        free(f);
        image_free(&crop);
        image_free(&out);
    }
    static const char *const names[5] = {"search (detect+landmarks)", "warp to 200x200",
                                         "framing to model input", "paste back", "generator forward"};
    double m[5];
    for (int s = 0; s < 5; s++)
        m[s] = bench_median(t[s], runs) * 1e3;
    printf("1024x768 photo, %d face(s), model %d px, median of %d runs (ms):\n", faces_found, size, runs);
    for (int s = 0; s < 5; s++)
        printf("  %-28s %8.1f\n", names[s], m[s]);
    printf("  %-28s %8.1f  (%.2fx the generator)\n", "face total (all but G)", m[0] + m[1] + m[2] + m[3],
           (m[0] + m[1] + m[2] + m[3]) / m[4]);
    for (int s = 0; s < 5; s++)
        free(t[s]);
    free(x), free(y);
    image_free(&ph), image_free(&scene);
    infer_free(g), backend_free(be), face_finder_free(ff);
    return 0;
}
