#!/usr/bin/env bash
# Run every unit test binary and every bats file, print their TAP output, and
# close with "N passed, N failed" (what CI reads).  Exit 1 on any failure.
# BIN_DIR and UNIT_DIR say which build to test (make test / make asan set them).
set -u
here=$(cd "$(dirname "$0")" && pwd)
export BIN_DIR=${BIN_DIR:-$here/../bin} UNIT_DIR=${UNIT_DIR:-$here/../build/tests}
export PATH="$BIN_DIR:$PATH" TESTS_DIR=$here
# Parity with PyTorch is checked on the CPU backend, also on a machine with a
# GPU (tools without --device use AGING_DEVICE); `make test-gpu` covers the GPU.
export AGING_DEVICE=${AGING_DEVICE:-cpu}
# OpenMP threads sleep at barriers instead of spinning: the tests run small
# problems beside each other's processes (and whatever else loads the
# machine), where spinning threads only steal cores (tests/helpers.bash).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
source "$here/tap.bash"

# test_image and test_half read the same PyTorch references: made once here
# (importing torch takes half a minute on a loaded machine), not once each.
if [ -z "${IMAGE_REF_DIR:-}" ]; then
    ref_dir=$(mktemp -d)
    trap 'rm -f "$tap_log"; rm -rf "$ref_dir"' EXIT
    # without torch the tests say SKIP themselves
    /usr/bin/python3 "$here/py/image_ops_ref.py" "$ref_dir" > /dev/null 2>&1 && export IMAGE_REF_DIR=$ref_dir
fi
tap_run_bins unit 600 "$UNIT_DIR"/test_*
tap_run_bats 900 "$here"/*.bats
tap_summary
