/*
 * face: find the faces of a photo, align each like a UTKFace crop, and put
 * a translated crop back into the photo.
 *
 *   face_finder *ff = face_finder_open();      // NULL + err_msg() without dlib
 *   face *f; int n = face_find(ff, &photo, 4, &f);   // largest first
 *   image crop;  face_warp(&crop, &photo, f[0].A, FACE_FRAME, FACE_FRAME);
 *   ... transform_eval(&crop, size, resize), run the generator: x -> y ...
 *   face_model_to(B, f[0].A, size, resize);    // model pixels -> photo
 *   paste_change(&photo, x, y, size, B, PASTE_FACE, 1);  // photo += feathered (y - x)
 *   free(f); face_finder_free(ff);
 *
 * Coordinates are continuous: pixel (i, j) covers [i, i+1) x [j, j+1), its
 * centre is (i + 0.5, j + 0.5).  An affine map M[6] takes (x, y) to
 * (M0 x + M1 y + M2, M3 x + M4 y + M5).
 *
 * Detection and landmarks come from dlib (Debian's libdlib-dev: the HOG
 * frontal-face detector; libdlib-data: the 68-point shape predictor), built
 * as build/libaging-face.so from lib/face/face-dlib.cpp and loaded at run time,
 * so everything else builds and runs without dlib.  The search, alignment,
 * warps and blending are here, in C.  Errors: -1 (or NULL) with err_msg().
 */
#pragma once

#include "image/image.h"
#include "paste.h"

/* The frame faces are aligned to: a UTKFace crop, 200 x 200. */
#define FACE_FRAME 200
/* --face refuses photos larger than this (50 megapixels) before decoding. */
#define FACE_MAX_PIXELS 50000000L

/* The template: where a UTKFace crop has the centre of the left eye (as
 * seen), the right eye, the nose tip and the left and right mouth corners,
 * in FACE_FRAME pixels (measured; see face.c). */
extern const float face_template[5][2];

typedef struct face {
    float box[4];     /* the detection's bound in the photo: left, top, right, bottom */
    float score;      /* the detector's confidence */
    float angle;      /* the rotation (degrees) of the copy it was found in; 0 upright */
    int upsample;     /* 1, or 2 when found in the upsampled copy */
    float pts[68][2]; /* dlib's 68 landmarks in the photo (continuous coordinates) */
    double A[6];      /* the similarity FACE_FRAME -> photo that aligns pts to the template */
    double scale;     /* photo pixels per frame pixel (the face's size) */
    double rmse;      /* fit residual of the 5 points, frame pixels */
} face;

typedef struct face_finder face_finder;

/* Load dlib's library and landmark model: $AGING_FACE_LIB, else
 * libaging-face.so beside the tools (../build, .., ../lib/aging); the model
 * $AGING_FACE_MODEL, else /usr/share/dlib/shape_predictor_68_face_landmarks.dat.
 * NULL with a message saying what is missing. */
face_finder *face_finder_open(void);
void face_finder_free(face_finder *ff); /* NULL-safe */

/* Every face of im (any c from 1 to 4), up to max, largest first, in a
 * malloc'd array (*faces, free it; NULL when none).  The upright photo is
 * searched first, then (only while nothing is found) a 2x upsampled copy
 * for small faces (when it stays under 8 megapixels), then copies rotated
 * by +-15 and +-30 degrees at both scales.  Photos with a side over 2048
 * are searched at that size.  A weak detection (score under 0.5) is kept
 * only if the detector finds a face again in its aligned crop (this drops
 * patterns like a badge taken for a face).  Returns the count (0: no
 * face), -1 on error. */
int face_find(face_finder *ff, const image *im, int max, face **faces);
/* face_find within a time limit (seconds > 0; 0: none): the upright copy
 * is always searched, the upsampled and rotated ones only while time is
 * left, so a photo that holds no face (noise) cannot keep a server busy
 * for long.  *late (may be NULL) is 1 when copies were skipped for time.
 * Safe to call from several threads at once with one finder. */
int face_find_until(face_finder *ff, const image *im, int max, double seconds, face **faces, int *late);

/* The five template points of 68 landmarks: eye centres (means of 36-41
 * and 42-47), nose tip (30), mouth corners (48, 54). */
void face_points5(const float pts[68][2], float p5[5][2]);
/* The similarity (rotation, uniform scale, shift) taking src to dst with
 * the least squared error: dst ~ M src.  -1 when src is degenerate. */
int face_similarity(const float src[][2], const float dst[][2], int n, double M[6]);
/* Minv = M^-1; -1 when M is singular. */
int face_affine_invert(const double M[6], double Minv[6]);
/* Align a face found by its landmarks: fills A, scale and rmse. */
int face_align(face *f);

/* out (w x h, in->c channels) = in sampled at M(out): bilinear, borders
 * reflected, and averaged over n x n sub-pixels when M shrinks (n =
 * ceil(scale), at most 8), so that big faces are not aliased. */
int face_warp(image *out, const image *in, const double M[6], int w, int h);
/* B: the map from the generator's input (size x size pixels, which
 * transform_eval(crop, size, resize) cut from a FACE_FRAME crop) to the
 * photo, given the crop's A. */
void face_model_to(double B[6], const double A[6], int size, int resize);
/* A generator for face_apply (paste.h). */
typedef paste_gen_fn face_gen_fn;
/* The aligned crop of face A as the generator's input x ([3,size,size],
 * framed by transform_eval(crop, size, resize) like a UTKFace crop). */
int face_input(float *x, const image *photo, const double A[6], int size, int resize); /* photo c 3 or 4 */
/* The whole job on a photo (c 3 or 4): every face's crop (all taken from
 * the photo as it was) through gen, its change blended back with
 * paste_change (PASTE_FACE) at strength (0 to PASTE_MAX_STRENGTH). */
int face_apply(image *photo, const face *faces, int n, int size, int resize, face_gen_fn gen, void *ctx,
               float strength);
/* Debugging: draw f's box (blue), its aligned frame (green) and its 68
 * landmarks (red) on photo (c 3 or 4). */
void face_draw(image *photo, const face *f);
