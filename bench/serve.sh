#!/usr/bin/env bash
# serve's throughput: CLIENTS clients (curl, in parallel) post a 256x256 face
# (data/demo/astronaut.png scaled up) to POST /api/translate of a serve
# running the shipped model at --size SIZE, until REQUESTS have been
# answered; prints requests/s and the median and 90th percentile latency
# per request.  Once with one worker on 1 thread, once with one worker per
# core (1 thread each, serve's default split), and with --precision bf16 too
# where serve has that option.  No PyTorch counterpart (it has no server of
# its own; bench/translate.sh compares the forward pass itself).
#   bench/serve.sh [requests=16] [clients=4] [size=256]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
n=${1:-16} clients=${2:-4} size=${3:-256}
export PATH="${BIN_DIR:-$here/../bin}:$PATH"
. "$here/../tests/server.bash"
model=${AGING_MODEL:-$here/../models/utkface-128.safetensors}
threads=${THREADS:-$(bench_threads)}
tmp=$(mktemp -d)
SERVER_PID=
cleanup() {
    stop_server "$SERVER_PID"
    rm -rf "$tmp"
}
trap cleanup EXIT

face=$tmp/face.png
if ! "$TORCH_PY" - "$here/../data/demo/astronaut.png" "$face" <<'PY' 2>/dev/null; then
import sys
from PIL import Image
Image.open(sys.argv[1]).convert("RGB").resize((256, 256), Image.BICUBIC).save(sys.argv[2])
PY
    face=$here/../data/demo/astronaut.png
    echo "# no PIL: posting the 200x200 face as it is" >&2
fi
precs=fp32
serve --help 2>&1 | grep -q -- --precision && precs="fp32 bf16"

# run_server WORKERS PRECISION: serve with WORKERS inference workers of one
# thread each; sets $url and SERVER_PID
run_server() {
    local opt=()
    [ "$2" = fp32 ] || opt=(--precision "$2")
    OMP_NUM_THREADS=$1 start_server "$tmp/log" --ckpt "$model" --size "$size" --threads "$1" --face off -q \
        "${opt[@]}"
    url="$URL/api/translate?direction=young2old&face=off"
}

post_all() {  # COUNT: COUNT posts, $clients at a time; "CODE SECONDS" per line
    seq "$1" | xargs -P "$clients" -I{} curl -sS --max-time 300 -o /dev/null \
        -w '%{http_code} %{time_total}\n' --data-binary @"$face" "$url"
}

printf '%-30s %-4s %3s %9s %11s %11s\n' figure prec thr "req/s" "median ms" "p90 ms"
for p in $precs; do
    for t in $threads; do
        run_server "$t" "$p"
        post_all "$clients" >/dev/null # warm-up: every worker's first call
        t0=$(date +%s.%N)
        post_all "$n" >"$tmp/times"
        t1=$(date +%s.%N)
        stop_server "$SERVER_PID"
        SERVER_PID=
        bad=$(awk '$1 != 200' "$tmp/times" | wc -l)
        [ "$bad" -eq 0 ] || echo "# $bad of $n requests failed" >&2
        sort -k2 -g "$tmp/times" | awk -v n="$n" -v t0="$t0" -v t1="$t1" -v p="$p" -v t="$t" \
            -v fig="serve ${size}², $clients clients" '
            { s[NR] = $2 }
            END { printf "%-30s %-4s %3s %9.2f %11.0f %11.0f\n", fig, p, t, n / (t1 - t0),
                  1000 * s[int((NR + 1) / 2)], 1000 * s[int(NR * 0.9 + 0.5)] }'
    done
done
