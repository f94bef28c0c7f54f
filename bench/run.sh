#!/usr/bin/env bash
# make bench: every benchmark, each printing our figure next to PyTorch's
# measured in the same run on this machine.  Not a test: nothing fails on
# timing.  UTKFACE_DIR gives real faces to the aug benchmark.
set -u
here=$(cd "$(dirname "$0")" && pwd)
for b in aug translate train_step fid face face_align; do
    echo "== bench/$b.sh"
    bash "$here/$b.sh" || echo "bench/$b.sh failed (exit $?)"
    echo
done
