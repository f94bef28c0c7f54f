/*
 * face-dlib: the two dlib calls face detection needs, behind a C interface,
 * built into build/libaging-face.so only where dlib is installed (Debian's
 * libdlib-dev); lib/face/face.c loads it at run time, so the tools build and run
 * without dlib.  Everything else (the search over rotations and scales, the
 * alignment, warps and blending) is plain C in lib/face/face.c.
 *
 *   face_dlib_open(predictor.dat, why, n)   load the 68-point landmarker
 *   face_dlib_detect(h, grey, w, h, out, max)  HOG frontal faces: n boxes
 *   face_dlib_landmarks(h, grey, w, h, box, pts)  68 (x, y) pixel centres
 *
 * The images are 8-bit grey, row-major, w*h bytes.  No C++ exception
 * leaves this file: errors are -1 (or NULL) with a message in `why` or
 * from face_dlib_error().
 */
#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <vector>

namespace {

/* The predictor is only read (shape_predictor's operator() is const), so
 * threads share it; dlib's detector keeps scratch state in itself, so each
 * thread has its own (face_find is then safe to call from several threads
 * at once with one finder: serve's workers search in parallel). */
struct handle {
    dlib::shape_predictor predictor;
};

dlib::frontal_face_detector &thread_detector()
{
    thread_local dlib::frontal_face_detector d = dlib::get_frontal_face_detector();
    return d;
}

thread_local char last_error[512];

void set_error(const char *what, const std::exception &e)
{
    std::snprintf(last_error, sizeof last_error, "%s: %s", what, e.what());
}

void to_array(dlib::array2d<unsigned char> &img, const uint8_t *grey, int w, int h)
{
    img.set_size(h, w);
    for (int y = 0; y < h; y++)
        std::memcpy(&img[y][0], grey + (size_t)y * w, (size_t)w);
}

} // namespace

extern "C" {

__attribute__((visibility("default"))) const char *face_dlib_error(void)
{
    return last_error;
}

__attribute__((visibility("default"))) void *face_dlib_open(const char *predictor, char *why, size_t n)
{
    try {
        handle *hd = new handle;
        try {
            dlib::deserialize(predictor) >> hd->predictor;
        } catch (...) {
            delete hd;
            throw;
        }
        if (hd->predictor.num_parts() != 68) {
            std::snprintf(why, n, "%s: a %lu-point landmark model, expected 68 points", predictor,
                          (unsigned long)hd->predictor.num_parts());
            delete hd;
            return nullptr;
        }
        return hd;
    } catch (const std::exception &e) {
        std::snprintf(why, n, "%s: %s", predictor, e.what());
        return nullptr;
    }
}

__attribute__((visibility("default"))) void face_dlib_close(void *h)
{
    delete static_cast<handle *>(h);
}

/* Up to max detections as (left, top, right, bottom, score), in pixel
 * coordinates of the image (dlib's inclusive rectangles, right + 1 and
 * bottom + 1 here so that width = right - left).  Returns how many there
 * are, which may be more than max: the caller then asks again with room. */
__attribute__((visibility("default"))) int face_dlib_detect(void *h, const uint8_t *grey, int w, int ht, float *out,
                                                          int max)
{
    try {
        (void)h;
        dlib::array2d<unsigned char> img;
        to_array(img, grey, w, ht);
        std::vector<dlib::rect_detection> dets;
        thread_detector()(img, dets, 0.0);
        int n = 0;
        for (const auto &d : dets) {
            if (n == max)
                return (int)dets.size();
            out[5 * n + 0] = (float)d.rect.left();
            out[5 * n + 1] = (float)d.rect.top();
            out[5 * n + 2] = (float)d.rect.right() + 1.0f;
            out[5 * n + 3] = (float)d.rect.bottom() + 1.0f;
            out[5 * n + 4] = (float)d.detection_confidence;
            n++;
        }
        return n;
    } catch (const std::exception &e) {
        set_error("face detection", e);
        return -1;
    }
}

/* The 68 landmarks of the face in box (l, t, r, b as face_dlib_detect
 * gives), as pixel-index coordinates: pts[2k], pts[2k+1]. */
__attribute__((visibility("default"))) int face_dlib_landmarks(void *h, const uint8_t *grey, int w, int ht,
                                                             const float *box, float *pts)
{
    try {
        handle *hd = static_cast<handle *>(h);
        dlib::array2d<unsigned char> img;
        to_array(img, grey, w, ht);
        dlib::rectangle r((long)box[0], (long)box[1], (long)box[2] - 1, (long)box[3] - 1);
        dlib::full_object_detection s = hd->predictor(img, r);
        for (unsigned long k = 0; k < 68; k++) {
            pts[2 * k] = (float)s.part(k).x();
            pts[2 * k + 1] = (float)s.part(k).y();
        }
        return 0;
    } catch (const std::exception &e) {
        set_error("face landmarks", e);
        return -1;
    }
}

} // extern "C"
