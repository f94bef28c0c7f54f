#!/usr/bin/env bats
# serve: the HTTP API with curl (results equal translate's, every bad input,
# concurrency, clean shutdown) and the page in a real headless Chromium.
# Every server listens on 127.0.0.1 on a free port the kernel picks, runs
# under `timeout`, and is killed at teardown; every curl has --max-time.

load helpers

setup_file() {
    export CK="$BATS_FILE_TMPDIR/ck.safetensors" D="$BATS_FILE_TMPDIR"
    has_torch || return 0
    "$PY" "$TESTS_DIR/py/ref_translate.py" ckpt "$CK" 8 2 3
    faces=$(faces_dir)
    cp "$(ls "$faces"/*.jpg.chip.jpg | head -1)" "$D/face.jpg"
    cp "$(ls "$faces"/*.jpg.chip.jpg | sed -n 20p)" "$D/face2.jpg"
    "$PY" - "$D" <<'PY'
import sys
from PIL import Image
d = sys.argv[1]
Image.open(d + "/face2.jpg").resize((60, 80)).save(d + "/face.png")
jpg = open(d + "/face.jpg", "rb").read()
open(d + "/corrupt.jpg", "wb").write(jpg[:len(jpg) // 2])          # cut in the scan data
open(d + "/badmarker.jpg", "wb").write(jpg[:20] + bytes(100) + jpg[120:])  # tables zeroed
png = open(d + "/face.png", "rb").read()
open(d + "/truncated.png", "wb").write(png[:len(png) // 2])
open(d + "/header-only.png", "wb").write(png[:20])
Image.new("RGB", (300, 200), (90, 120, 150)).save(d + "/many-pixels.png")
Image.new("RGB", (300, 200), (90, 120, 150)).save(d + "/many-pixels.jpg")
open(d + "/text.jpg", "w").write("hello, I am not a picture\n")
open(d + "/big.bin", "wb").write(bytes(range(256)) * 1200)          # 300 KB
PY
    for f in face.jpg face.png; do
        translate --y2o --ckpt "$CK" --size 64 -i "$D/$f" -o "$D/$f.young2old.png"
        translate --o2y --ckpt "$CK" --size 64 -i "$D/$f" -o "$D/$f.old2young.png"
    done
    # One server for most tests: 2 workers, small limits so the 413 cases are cheap.
    start_server "$D/server.log" --ckpt "$CK" --size 64 --threads 2 --max-upload 200000 --max-pixels 40000
    echo "$URL" >"$D/url"
    echo "$SERVER_PID" >"$D/pid"
}

# The shared server must still stop cleanly (exit 0) after all the tests.
teardown_file() {
    [ -f "$D/pid" ] || return 0
    stop_server "$(cat "$D/pid")"
    [ "$STOP_STATUS" -eq 0 ] || { echo "serve exited with $STOP_STATUS" >&2; tail -30 "$D/server.log" >&2; return 1; }
}

setup() {
    common_setup
    [ -f "$CK" ] || skip "no torch to make a checkpoint"
    URL=$(cat "$D/url")
}

teardown() {
    [ -n "${OWN_PID:-}" ] && stop_server "$OWN_PID" KILL
    common_teardown
}

# POST a file; prints the status code, the body goes to $TMP/body.
post() {  # FILE QUERY [curl options]
    local f=$1 q=$2
    shift 2
    curl -sS --max-time 60 -o "$TMP/body" -w '%{http_code}' --data-binary @"$f" "$@" "$URL/api/translate$q"
}

# The body is JSON {"error": "..."} containing $1.
assert_json_error() {
    run "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["error"])' "$TMP/body"
    assert_success
    assert_output --partial "$1"
}

@test "serve: --help exits 0; bad options exit 2; a missing checkpoint exits 1" {
    run serve --help
    assert_success
    assert_output --partial "usage: serve"
    for bad in "--port 70000" "--size 30" "--threads 0" "--device tpu" "--max-upload 0" "--nope" "extra"; do
        run serve $bad
        [ "$status" -eq 2 ] || { echo "serve $bad -> $status: $output"; false; }
    done
    run timeout 20 serve --ckpt "$TMP/none.safetensors" --port 0
    assert_failure 1
    assert_output --partial "serve: "
    assert_output --partial "none.safetensors"
}

@test "serve: GET /api/health gives the model and the limits" {
    run curl -sS --max-time 10 -i "$URL/api/health"
    assert_success
    assert_output --partial "200 OK"
    assert_output --partial "Content-Type: application/json"
    curl -sS --max-time 10 "$URL/api/health" >"$TMP/h.json"
    "$PY" - "$TMP/h.json" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))
m = h["model"]
assert h["status"] == "ok", h
assert (m["ngf"], m["blocks"], m["size"], m["device"]) == (8, 2, 64, "cpu"), m
assert h["directions"] == ["young2old", "old2young"], h
assert (h["max_upload"], h["max_pixels"], h["workers"]) == (200000, 40000, 2), h
PY
}

@test "serve: GET / is one self-contained page" {
    curl -sS --max-time 10 -D "$TMP/headers" -o "$TMP/page.html" "$URL/"
    grep -qi '^Content-Type: text/html' "$TMP/headers"
    grep -qi "^Content-Security-Policy: default-src 'none'" "$TMP/headers"
    grep -q 'type="file"' "$TMP/page.html"
    grep -q 'value="young2old"' "$TMP/page.html"
    grep -q 'value="old2young"' "$TMP/page.html"
    grep -q 'UTKFace' "$TMP/page.html"
    grep -q 'name="viewport"' "$TMP/page.html"
    # nothing loaded from elsewhere
    run grep -Eio '(src|href)="(https?:)?//[^"]*' "$TMP/page.html"
    assert_failure
    run grep -Eio '<(script|link)[^>]*(src|href)="[^"]*\.(js|css)' "$TMP/page.html"
    assert_failure
    [ "$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$URL/index.html")" = 200 ]
}

@test "serve: JPEG and PNG uploads give what translate gives, byte for byte" {
    for f in face.jpg face.png; do
        for dir in young2old old2young; do
            code=$(post "$D/$f" "?direction=$dir" -D "$TMP/headers")
            [ "$code" = 200 ] || { cat "$TMP/body"; false; }
            grep -qi '^Content-Type: image/png' "$TMP/headers"
            grep -qi '^Server-Timing: decode;dur=' "$TMP/headers"
            cmp "$TMP/body" "$D/$f.$dir.png"
        done
    done
    run cmp -s "$D/face.jpg.young2old.png" "$D/face.jpg.old2young.png"
    assert_failure
}

# Max |a - b| over the pixels of two pictures of one size (RGB).
pixel_diff() { "$PY" "$TESTS_DIR/py/ref_translate.py" diff "$1" "$2"; }

@test "serve: strength=S gives what translate --strength S gives; 0 is the input, 2 changes more than 1" {
    for f in face.jpg face.png; do
        for s in 0 0.5 2; do
            code=$(post "$D/$f" "?direction=young2old&strength=$s")
            [ "$code" = 200 ] || { cat "$TMP/body"; false; }
            translate --y2o --ckpt "$CK" --size 64 --strength "$s" -i "$D/$f" -o "$TMP/want.png"
            cmp "$TMP/body" "$TMP/want.png"
            mv "$TMP/body" "$TMP/$f.$s.png"
        done
        # 0: the input's pixels, exactly (a PNG: its own bytes)
        [ "$(pixel_diff "$D/$f" "$TMP/$f.0.png")" -eq 0 ]
        d1=$(pixel_diff "$D/$f" "$D/$f.young2old.png") d2=$(pixel_diff "$D/$f" "$TMP/$f.2.png")
        echo "# $f: max |change| at strength 1: $d1, at 2: $d2" >&3
        [ "$d1" -gt 0 ] && [ "$d2" -gt "$d1" ]
    done
    cmp "$D/face.png" "$TMP/face.png.0.png"
    # strength=1 is the default
    [ "$(post "$D/face.jpg" "?direction=young2old&strength=1")" = 200 ]
    cmp "$TMP/body" "$D/face.jpg.young2old.png"
}

@test "serve: a strength out of range or not a number is 400 and says so" {
    for s in -0.1 2.5 abc 1x '' nan inf 1%00; do
        [ "$(post "$D/face.jpg" "?direction=old2young&strength=$s")" = 400 ] || { echo "strength=$s"; false; }
        assert_json_error "strength must be a number from 0 to 2, got '"
    done
    assert_json_error "strength must be a number from 0 to 2, got '1'" # the NUL cut it
    [ "$(post "$D/face.jpg" "?direction=old2young&strength=2.5")" = 400 ]
    assert_json_error "strength must be a number from 0 to 2, got '2.5'"
}

@test "serve: raw=1 answers the generator's own model-size image, as translate --raw" {
    for f in face.jpg face.png; do
        code=$(post "$D/$f" "?direction=old2young&raw=1")
        [ "$code" = 200 ] || { cat "$TMP/body"; false; }
        translate --o2y --ckpt "$CK" --size 64 --raw -i "$D/$f" -o "$TMP/want.png"
        cmp "$TMP/body" "$TMP/want.png"
        mv "$TMP/body" "$TMP/$f.raw.png"
        [ "$(post "$D/$f" "?direction=old2young&raw=0")" = 200 ]
        cmp "$TMP/body" "$D/$f.old2young.png"
    done
    # the model's 64 x 64 against the pictures' own sizes (face.png is 60 x 80)
    "$PY" - "$TMP" "$D" <<'PY'
import sys
from PIL import Image
t, d = sys.argv[1:]
sizes = [Image.open(p).size for p in (t + "/face.jpg.raw.png", t + "/face.png.raw.png", d + "/face.png.old2young.png")]
assert sizes == [(64, 64), (64, 64), (60, 80)], sizes
PY
    [ "$(post "$D/face.jpg" "?direction=old2young&raw=yes")" = 400 ]
    assert_json_error "raw must be 0 or 1, got 'yes'"
    [ "$(post "$D/face.jpg" "?direction=old2young&raw=1&strength=0.5")" = 400 ]
    assert_json_error "strength scales the change in a full-size result: not with raw=1"
    [ "$(post "$D/face.jpg" "?direction=old2young&raw=1&face=on")" = 400 ]
    assert_json_error "face=on"
}

@test "serve: bad images are 400 with a JSON error" {
    [ "$(post "$D/text.jpg" '?direction=young2old')" = 400 ]
    assert_json_error "not a JPEG or PNG"
    [ "$(post "$D/corrupt.jpg" '?direction=young2old')" = 400 ]
    assert_json_error "corrupt JPEG"
    [ "$(post "$D/badmarker.jpg" '?direction=old2young')" = 400 ]
    assert_json_error "corrupt JPEG"
    [ "$(post "$D/truncated.png" '?direction=young2old')" = 400 ]
    assert_json_error "corrupt PNG"
    [ "$(post "$D/header-only.png" '?direction=young2old')" = 400 ]
    assert_json_error "corrupt PNG"
    [ "$(post /dev/null '?direction=young2old')" = 400 ]
    assert_json_error "empty body"
}

@test "serve: a bad or missing direction is 400" {
    [ "$(post "$D/face.jpg" '?direction=sideways')" = 400 ]
    assert_json_error "direction must be young2old or old2young"
    [ "$(post "$D/face.jpg" '')" = 400 ]
    assert_json_error "direction"
    [ "$(post "$D/face.jpg" '?direction=young2old%00')" = 400 ]
}

@test "serve: too large a body is 413, by Content-Length and when streamed in chunks" {
    [ "$(post "$D/big.bin" '?direction=young2old')" = 413 ]
    assert_json_error "upload too large: 307200 bytes, the limit is 200000"
    # chunked: no length up front, the server counts and drops the excess
    [ "$(post "$D/big.bin" '?direction=young2old' -H 'Transfer-Encoding: chunked')" = 413 ]
    assert_json_error "upload too large"
    [ "$(post "$D/big.bin" '?direction=young2old' -H 'Expect: 100-continue')" = 413 ]
}

@test "serve: too many pixels is 413, from the header, for PNG and JPEG" {
    for f in many-pixels.png many-pixels.jpg; do
        [ "$(post "$D/$f" '?direction=young2old')" = 413 ]
        assert_json_error "image too large: 300x200 is 60000 pixels, the limit is 40000"
    done
}

@test "serve: wrong methods are 405, unknown paths 404, no path traversal" {
    code=$(curl -sS --max-time 10 -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' "$URL/api/translate?direction=young2old")
    [ "$code" = 405 ]
    grep -qi '^Allow: POST' "$TMP/headers"
    assert_json_error "method GET not allowed"
    [ "$(curl -sS --max-time 10 -o "$TMP/body" -w '%{http_code}' -X PUT --data x "$URL/api/translate?direction=young2old")" = 405 ]
    [ "$(curl -sS --max-time 10 -o "$TMP/body" -w '%{http_code}' --data x "$URL/api/health")" = 405 ]
    [ "$(curl -sS --max-time 10 -o "$TMP/body" -w '%{http_code}' -X DELETE "$URL/")" = 405 ]
    for p in /nope /api /api/ /api/translate/ /index.htm /../../etc/passwd /%2e%2e/%2e%2e/etc/passwd \
        /..%2f..%2fetc%2fpasswd //etc/passwd '/api/../../etc/passwd' /web-page.c; do
        code=$(curl -sS --max-time 10 --path-as-is -o "$TMP/body" -w '%{http_code}' "$URL$p")
        [ "$code" = 404 ] || { echo "$p -> $code"; false; }
        assert_json_error "not found"
        run grep -q 'root:' "$TMP/body"
        assert_failure
    done
}

@test "serve: 20 concurrent requests are all answered correctly, and the server goes on" {
    pids=()
    for i in $(seq 20); do
        f=face.jpg
        [ $((i % 2)) = 0 ] && f=face.png
        dir=young2old
        [ $((i % 3)) = 0 ] && dir=old2young
        curl -sS --max-time 120 -o "$TMP/r$i.png" -w '%{http_code}\n' --data-binary @"$D/$f" \
            "$URL/api/translate?direction=$dir" >"$TMP/code$i" &
        pids+=($!)
        echo "$D/$f.$dir.png" >"$TMP/want$i"
    done
    for p in "${pids[@]}"; do wait "$p"; done
    for i in $(seq 20); do
        [ "$(cat "$TMP/code$i")" = 200 ] || { echo "request $i: $(cat "$TMP/code$i")"; false; }
        cmp "$TMP/r$i.png" "$(cat "$TMP/want$i")"
    done
    [ "$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$URL/api/health")" = 200 ]
    [ "$(post "$D/face.jpg" '?direction=young2old')" = 200 ]
    cmp "$TMP/body" "$D/face.jpg.young2old.png"
    kill -0 "$(cat "$D/pid")"
}

@test "serve: the page and /api/health answer at once while the workers are busy" {
    # one worker at 512 px: eight uploads queue for seconds
    start_server "$TMP/s.log" --ckpt "$CK" --size 512 --threads 1
    OWN_PID=$SERVER_PID
    pids=()
    for i in $(seq 8); do
        curl -sS --max-time 120 -o "$TMP/r$i.png" -w '%{http_code} %{time_total}\n' --data-binary @"$D/face.jpg" \
            "$URL/api/translate?direction=young2old" >"$TMP/code$i" &
        pids+=($!)
    done
    sleep 0.3
    h=$(curl -sS --max-time 60 -o /dev/null -w '%{http_code} %{time_total}' "$URL/api/health")
    p=$(curl -sS --max-time 60 -o /dev/null -w '%{http_code} %{time_total}' "$URL/")
    for pid in "${pids[@]}"; do wait "$pid"; done
    last=$(cut -d' ' -f2 "$TMP"/code* | sort -n | tail -1)
    echo "# health $h s, page $p s, while 8 uploads took up to $last s" >&3
    [ "${h%% *}" = 200 ] && [ "${p%% *}" = 200 ]
    [ "$(cut -d' ' -f1 "$TMP"/code* | sort -u)" = 200 ]
    # the health check did not wait for the queue
    "$PY" -c 'import sys; h, p, last = map(float, sys.argv[1:]); assert max(h, p) < min(1.0, last / 4), (h, p, last)' \
        "${h#* }" "${p#* }" "$last"
}

@test "serve: 70 slow connections from one client neither make it unreachable nor stay for ever" {
    # the attacker's connections all come from 127.0.0.1; others from 127.0.0.2 (loopback too)
    start_server "$TMP/s.log" --ckpt "$CK" --size 64 --threads 1
    OWN_PID=$SERVER_PID
    port=${URL##*:}
    "$PY" "$TESTS_DIR/py/slowloris.py" 127.0.0.1 "$port" 70 8 trickle "$TMP/ready" >"$TMP/trickle.json" &
    slow=$!
    for _ in $(seq 100); do [ -e "$TMP/ready" ] && break; sleep 0.1; done
    sleep 1
    h=$(curl -sS --interface 127.0.0.2 --max-time 10 -o /dev/null -w '%{http_code} %{time_total}' "$URL/api/health" || true)
    wait $slow
    echo "# health $h while 70 connections trickled in: $(cat "$TMP/trickle.json")" >&3
    [ "${h%% *}" = 200 ]
    "$PY" -c 'import sys; assert float(sys.argv[1]) < 3, sys.argv[1]' "${h#* }"
    # the connections past the per-client limit were refused at once
    "$PY" - "$TMP/trickle.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["closed"] >= 70 - 32 and r["open"] <= 32, r  # --max-per-client's default
PY
    stop_server "$OWN_PID"
    # with a short --timeout, connections that go quiet mid-request are closed
    start_server "$TMP/s2.log" --ckpt "$CK" --size 64 --threads 1 --timeout 2 --max-per-client 0
    OWN_PID=$SERVER_PID
    rm -f "$TMP/ready"
    run "$PY" "$TESTS_DIR/py/slowloris.py" 127.0.0.1 "${URL##*:}" 40 8 silent "$TMP/ready"
    echo "# --timeout 2, 40 quiet connections: $output" >&3
    "$PY" - "$output" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
assert r["closed"] == 40 and 1.5 <= r["first_closed"] and r["last_closed"] <= 5, r
PY
    [ "$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$URL/api/health")" = 200 ]
}

@test "serve: SIGTERM and SIGINT stop it cleanly, also with an upload in progress" {
    for sig in TERM INT; do
        start_server "$TMP/s.log" --ckpt "$CK" --size 64 --threads 1
        OWN_PID=$SERVER_PID
        [ "$(post "$D/face.jpg" '?direction=young2old')" = 200 ]
        # a slow chunked upload, still open when the signal comes
        { head -c 200 "$D/face.jpg"; sleep 3; tail -c +201 "$D/face.jpg"; } |
            curl -sS --max-time 20 -o /dev/null -H 'Transfer-Encoding: chunked' --data-binary @- \
                "$URL/api/translate?direction=young2old" 2>/dev/null &
        cpid=$!
        sleep 0.5
        stop_server "$OWN_PID" "$sig"
        OWN_PID=
        [ "$STOP_STATUS" -eq 0 ] || { echo "exit $STOP_STATUS"; cat "$TMP/s.log"; false; }
        grep -q "SIG$sig, stopping" "$TMP/s.log"
        grep -q "serve: stopped" "$TMP/s.log"
        run curl -sS --max-time 5 "$URL/api/health"
        assert_failure
        wait "$cpid" || true
    done
}

@test "serve: the page in headless Chromium: upload, direction, result, screenshot" {
    command -v chromium >/dev/null && command -v chromedriver >/dev/null \
        || skip "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
    "$PY" -c 'import selenium' 2>/dev/null || skip "python3-selenium is not installed"
    run timeout -k 10 180 "$PY" "$TESTS_DIR/py/serve_browser.py" "$URL/" "$D/face.jpg" "$TMP" 48 old2young \
        "$D/face.jpg.old2young.png"
    echo "$output"
    [ "$status" -ne 77 ] || skip "$output"
    assert_success
    assert_output --partial "OK"
    [ -s "$TMP/serve.png" ] && [ -s "$TMP/serve-phone.png" ]
    echo "# screenshots: $TMP/serve.png, $TMP/serve-phone.png" >&3
    if [ -n "${SERVE_SCREENSHOT_DIR:-}" ]; then
        cp "$TMP/serve.png" "$TMP/serve-phone.png" "$SERVE_SCREENSHOT_DIR/"
    fi
}

@test "serve: a multipart form upload gets 415 and a message that says what to send" {
    code=$(curl -sS --max-time 30 -o "$TMP/body" -w '%{http_code}' -F "file=@$D/face.jpg" \
        "$URL/api/translate?direction=young2old")
    [ "$code" = 415 ]
    assert_json_error "a multipart form upload: POST the JPEG or PNG bytes themselves"
    [ "$(post "$D/face.jpg" "?direction=young2old")" = 200 ] # the server carries on
}

@test "serve: with no --ckpt it serves the shipped model at its training size, as translate does" {
    root=$(cd "$TESTS_DIR/.." && pwd)
    cd "$TMP" # no outputs/checkpoints/best.safetensors here
    unset AGING_MODEL
    start_server "$TMP/log" --threads 1
    OWN_PID=$SERVER_PID
    grep -q "using the shipped model, $root/models/utkface-128.safetensors" "$TMP/log"
    curl -sS --max-time 10 "$URL/api/health" > "$TMP/h.json"
    "$PY" -c 'import json, sys; m = json.load(open(sys.argv[1]))["model"]; assert (m["checkpoint"], m["size"]) == ("utkface-128.safetensors", 128), m' "$TMP/h.json"
    [ "$(post "$root/data/demo/astronaut.png" "?direction=young2old")" = 200 ]
    translate --y2o -o "$TMP/t.png" "$root/data/demo/astronaut.png" 2> /dev/null
    cmp "$TMP/body" "$TMP/t.png"
}

@test "serve --precision: bf16 answers as translate --precision bf16; the emulation says so once" {
    translate --y2o --ckpt "$CK" --size 64 --precision bf16 -i "$D/face.jpg" -o "$TMP/want.png"
    for env in 1 0; do
        AGING_CPU_BF16=$env start_server "$TMP/s$env.log" --ckpt "$CK" --size 64 --threads 2 --precision bf16
        OWN_PID=$SERVER_PID
        [ "$(curl -sS --max-time 10 "$URL/api/health" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["model"]["precision"])')" = bf16 ]
        code=$(post "$D/face.jpg" "?direction=young2old")
        [ "$code" = 200 ] || { cat "$TMP/body"; false; }
        [ "$env" = 0 ] || cmp "$TMP/body" "$TMP/want.png"
        stop_server "$OWN_PID"
        OWN_PID=
    done
    # two workers, one backend each: one line
    [ "$(grep -c 'bf16 is emulated' "$TMP/s0.log")" = 1 ]
    grep -qx "serve: AGING_CPU_BF16=0: bf16 is emulated (slow)" "$TMP/s0.log"
    AGING_CPU_BF16=0 start_server "$TMP/auto.log" --ckpt "$CK" --size 64 --precision auto
    OWN_PID=$SERVER_PID
    [ "$(curl -sS --max-time 10 "$URL/api/health" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["model"]["precision"])')" = fp32 ]
    run grep -c emulated "$TMP/auto.log"
    [ "$output" = 0 ]
}

@test "serve: a path with %0a or control bytes is logged escaped, on one line (no forged log line)" {
    curl -sS --max-time 10 -o /dev/null "$URL/%0aserve:%20POST%20/api/translate%20-%3E%20200%1b%5b31m" || true
    sleep 0.5
    log="$D/server.log"
    ! grep -q '^serve: POST /api/translate -> 200$' "$log"
    ! grep -q $'\x1b' "$log"
    grep -q 'serve: GET /\\nserve: POST /api/translate -> 200\\033\[31m -> 404' "$log"
}

@test "serve: a slowloris from many addresses (127.0.0.x) is closed by --request-timeout; the page and /api/health keep answering" {
    start_server "$TMP/s.log" --ckpt "$CK" --size 64 --threads 1 --max-connections 64 --max-per-client 8 \
        --request-timeout 3 --face off
    OWN_PID=$SERVER_PID
    # 12 addresses x 8 trickling connections (96, over the 64 slots), reconnecting when closed
    run "$PY" "$TESTS_DIR/py/serve_attack.py" "${URL##*:}" "$OWN_PID" "$D/face.jpg" "$D/face.jpg" 6 \
        addresses=12 per_address=8 uploads=0 noise=0 bombs=0
    echo "# $output" >&3
    "$PY" - "$output" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
assert r["normal_status"] == [200] and r["health_status"] == [200], r
assert r["health_max_s"] < 5 and r["normal_max_s"] < 10, r   # generous: a loaded 2-core CI
assert r["attackers"].get("slow_closed", 0) >= 12, r          # the deadline and the guard closed them
PY
    [ "$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$URL/")" = 200 ]
}

@test "serve: uploads past --max-queued are 503 with Retry-After; the bytes are given back" {
    start_server "$TMP/s.log" --ckpt "$CK" --size 64 --threads 1 --max-upload 200000 --max-queued 400000
    OWN_PID=$SERVER_PID
    port=${URL##*:}
    # one upload that declares 150000 bytes and sends 10, holding them
    "$PY" -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /api/translate?direction=young2old HTTP/1.1\r\nHost: x\r\nContent-Length: 150000\r\n\r\n0123456789")
time.sleep(4)
' "$port" &
    holder=$!
    sleep 1
    head -c 190000 "$D/big.bin" >"$TMP/b190k"
    code=$(curl -sS --max-time 10 -D "$TMP/h" -o "$TMP/body" -w '%{http_code}' --data-binary @"$TMP/b190k" \
        "$URL/api/translate?direction=young2old")
    [ "$code" = 503 ] || { echo "got $code"; cat "$TMP/body"; false; }
    grep -qi '^Retry-After: 5' "$TMP/h"
    assert_json_error "try again"
    wait $holder
    sleep 0.5
    # the holder is gone: the same upload is read again (and is not a picture)
    [ "$(post "$TMP/b190k" '?direction=young2old')" = 400 ]
}
