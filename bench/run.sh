#!/usr/bin/env bash
# make bench: every benchmark, each printing our figure next to PyTorch's
# measured in the same run on this machine, after the CPU found (its ISA
# features and peak, bench/cpu.sh).  Not a test: nothing fails on timing.
# UTKFACE_DIR gives real faces to the aug benchmark.  BENCHES chooses
# which run (default: all of them).
set -u
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/cpu.sh"
echo
for b in ${BENCHES:-translate train_step serve aug fid face face_align}; do
    echo "== bench/$b.sh"
    bash "$here/$b.sh" || echo "bench/$b.sh failed (exit $?)"
    echo
done
