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

# Start serve with the given options; sets SERVER_PID and URL.  The server
# prints its port on stderr once the generators are loaded.
start_server() {
    local log=$1
    shift
    timeout -k 5 600 serve --host 127.0.0.1 --port 0 "$@" >"$log" 2>&1 3>&- &
    SERVER_PID=$!
    local port=
    for _ in $(seq 300); do
        port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$log")
        [ -n "$port" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        cat "$log" >&2
        return 1
    fi
    URL="http://127.0.0.1:$port"
}

# Stop a server with a signal and wait (bounded) for it to exit; its status
# is in STOP_STATUS (137: it had to be killed).  The signal goes to serve
# itself, the child of `timeout`, so that STOP_STATUS is serve's own.
stop_server() {
    local pid=$1 sig=${2:-TERM}
    [ -n "$pid" ] || return 0
    kill -"$sig" "$(pgrep -P "$pid" || echo "$pid")" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    STOP_STATUS=0
    wait "$pid" 2>/dev/null || STOP_STATUS=$?
}
