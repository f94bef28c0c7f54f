#!/usr/bin/env bash
# translate --face on a 1024x768 photo (the public-domain portrait, scaled):
# the face search (dlib HOG detection + 68 landmarks), the alignment warp,
# the framing and the paste back, next to one generator forward of the
# shipped model, on the CPU.  Needs a build with dlib (libdlib-dev).
#   bench/face.sh [runs]
# Measured 2026-12-06 on the 2-core development VM (a training run sharing
# it), median of 5: search 81.8 ms, warp 0.8, framing 0.1, paste 0.7;
# 83.4 ms in all, 0.10x the generator's 833.8 ms at 128 px.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${BENCH_DIR:-$here/../build/bench}/face_time
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$bin" "$here/../data/demo/astronaut-full.png" \
    "${AGING_MODEL:-$here/../models/utkface-128.safetensors}" "${1:-5}"
