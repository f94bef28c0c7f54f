# Shared set-up for the bats tests: assertions, a temporary folder removed
# at teardown, the tools on PATH, the Python oracle, and fixture faces.
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

PY=/usr/bin/python3
export TESTS_DIR=${TESTS_DIR:-$(cd "$BATS_TEST_DIRNAME" && pwd)}
# The real faces, kept apart because some tests point UTKFACE_DIR elsewhere.
export REAL_UTKFACE_DIR=${REAL_UTKFACE_DIR:-${UTKFACE_DIR:-}}
export PATH="${BIN_DIR:-$TESTS_DIR/../bin}:$PATH"
# Every ZeroMQ wait is bounded, so a broken test fails instead of hanging.
export AGING_STREAM_TIMEOUT=${AGING_STREAM_TIMEOUT:-20}
# OpenMP threads that spin at barriers (libgomp's default) steal the cores
# from the other processes of a pipeline and from a loaded machine's other
# work: on 2 busy cores a 15-step toy training took 92 s spinning, 3 s
# sleeping.  The tests compute the same either way (see tests/run.sh).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

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

# Compare the tensors of two safetensors checkpoints (metadata aside):
# exit 1, naming a few, if any differs.
same_tensors() {
    "$PY" - "$1" "$2" <<'PY'
import json, struct, sys
def load(p):
    raw = open(p, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n])
    return {k: raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
a, b = load(sys.argv[1]), load(sys.argv[2])
diff = [k for k in a if a[k] != b.get(k)] + [k for k in b if k not in a]
print("# %d tensors, %d differ %s" % (len(a), len(diff), diff[:3]))
sys.exit(1 if diff else 0)
PY
}

# start_server / stop_server (tests/server.bash, shared with bench/serve.sh)
. "$TESTS_DIR/server.bash"
