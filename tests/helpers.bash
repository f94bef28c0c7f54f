# Shared set-up for the bats tests: assertions, a temporary folder removed
# at teardown, the tools on PATH, the Python oracle, and fixture faces.
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

PY=/usr/bin/python3
TESTS_DIR=${TESTS_DIR:-$(cd "$BATS_TEST_DIRNAME" && pwd)}
# The real faces, kept apart because some tests point UTKFACE_DIR elsewhere.
export REAL_UTKFACE_DIR=${REAL_UTKFACE_DIR:-${UTKFACE_DIR:-}}
export PATH="${BIN_DIR:-$TESTS_DIR/../bin}:$PATH"
# Every ZeroMQ wait is bounded, so a broken test fails instead of hanging.
export AGING_STREAM_TIMEOUT=${AGING_STREAM_TIMEOUT:-20}

common_setup() {
    TMP=$(mktemp -d)
}

common_teardown() {
    rm -rf "$TMP"
}

# A folder of fixture faces shared by the tests of one file.
faces_dir() {
    local d="$BATS_FILE_TMPDIR/faces"
    [ -d "$d" ] || "$PY" "$TESTS_DIR/py/faces.py" "$d" 12 48 >/dev/null
    echo "$d"
}

has_torch() {
    "$PY" -c 'import torch, torchvision' 2>/dev/null
}

summary() {
    "$PY" "$TESTS_DIR/py/streamtool.py" summary
}
