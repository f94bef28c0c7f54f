#!/usr/bin/env bash
# tests/gpu/run.sh: the device checks (make test-gpu; tests/gpu/device-run.sh
# on the GPU machine): every op and whole training steps against the CPU
# backend (GPU_TEST_DIR/test_*, built from tests/gpu/test_*.c), the host
# checks of the CUDA kernels' per-element math (UNIT_DIR/test_ops_math, when
# built), and the tools on the device (tests/gpu/*.bats).  Prints the TAP
# and closes with "N passed, N failed" (tests/tap.bash, as tests/run.sh).
#   AGING_GPU_DEVICE  the backend under test (default cuda; cpu checks the
#                     harness itself on a machine without a GPU)
#   AGING_GPU_REQUIRE=1  a device that cannot be opened fails instead of skipping
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export BIN_DIR=${BIN_DIR:-$root/bin} UNIT_DIR=${UNIT_DIR:-$root/build/tests}
export GPU_TEST_DIR=${GPU_TEST_DIR:-$root/build/gpu-tests}
export PATH="$BIN_DIR:$PATH" TESTS_DIR=$root/tests
export AGING_GPU_DEVICE=${AGING_GPU_DEVICE:-cuda}
export AGING_DEVICE=$AGING_GPU_DEVICE # tools run without --device use it too
export TAP_STREAM=1 # the device script may cut the run short: keep every line so far
source "$root/tests/tap.bash"

echo "# device under test: $AGING_GPU_DEVICE (reference: cpu)"
tap_run_bins gpu 300 "$GPU_TEST_DIR"/test_*
tap_run_bins unit 120 "$UNIT_DIR/test_ops_math" # when built (nvcc)
tap_run_bats 600 "$here"/*.bats
tap_summary
