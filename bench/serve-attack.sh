#!/usr/bin/env bash
# Issue #23's "done when" for serve: the attacks of items 5-9 together
# (tests/py/serve_attack.py: slowloris from 17 addresses x 32 connections,
# 64 concurrent 8 MiB uploads, face-free noise photos with face=on, a scan
# bomb and a JPEG declaring 8000x8000) against one serve with default
# options and the shipped model, while a normal client posts a real face
# (a UTKFace photo) and gets /api/health once a second.  Exits 1 unless
# every normal request was answered 200 within MAX_S seconds and the
# server's RSS stayed under 1 GB.
#   bench/serve-attack.sh [seconds=20] [max_s=2]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-20} max_s=${2:-2}
export PATH="${BIN_DIR:-$here/../bin}:$PATH" OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
. "$here/../tests/server.bash"
tmp=$(mktemp -d)
trap 'stop_server "${SERVER_PID:-}"; rm -rf "$tmp"' EXIT
faces=${UTKFACE_DIR:-$here/../../shared/data/utkface/UTKFace}
cp "$(ls "$faces"/*.jpg | sed -n 500p)" "$tmp/face.jpg"
/usr/bin/python3 -c '
import os, sys
from PIL import Image
Image.frombytes("RGB", (1000, 1400), os.urandom(1000 * 1400 * 3)).save(sys.argv[1], quality=92)
' "$tmp/noise.jpg"
start_server "$tmp/serve.log"
out=$(/usr/bin/python3 "$here/../tests/py/serve_attack.py" "${URL##*:}" "$(pgrep -P "$SERVER_PID" || echo "$SERVER_PID")" \
    "$tmp/face.jpg" "$tmp/noise.jpg" "$secs")
echo "$out"
/usr/bin/python3 - "$out" "$max_s" <<'PY'
import json, sys
r, max_s = json.loads(sys.argv[1]), float(sys.argv[2])
ok = r["normal_status"] == [200] and r["normal_max_s"] < max_s and r["rss_peak_mb"] < 1024
print("serve-attack: %s: normal requests %s, worst %.2f s (limit %g), RSS peak %d MB" %
      ("ok" if ok else "FAILED", r["normal_status"], r["normal_max_s"], max_s, r["rss_peak_mb"]))
sys.exit(0 if ok else 1)
PY
