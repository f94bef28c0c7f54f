#!/usr/bin/env bats
# Output files (lib/base/fileout.h): what is not a regular file is written in
# place, never replaced (FIFOs, devices, /dev/fd/N, links); temporary files
# never outlive their writer; new files follow the umask; the trainer's
# metrics failures are reported at the record that failed and save first.
# No test writes to a device node by name: as root, a writer that renames
# over /dev/null or /dev/stdout would replace them for the whole machine, so
# links and FIFOs in $TMP stand in for them.

load helpers

SMALL=(--ngf 8 --ndf 8 --blocks 1 --batch 2)

setup_file() {
    export CK="$BATS_FILE_TMPDIR/ck.safetensors" STATS="$BATS_FILE_TMPDIR/s.stats"
    utk-split --split train -q --epochs 1 "$(faces_dir)" | aug --train --size 32 --seed 3 \
        | cyclegan-step "${SMALL[@]}" --max-steps 1 --log-every 0 --ckpt-out "$CK" > /dev/null
    # minimal FID statistics: 4 dimensions, in the safetensors layout fid writes
    "$PY" - "$STATS" <<'PY'
import json, struct, sys
d = 4
mu = struct.pack("<%dd" % d, *[0.1 * i for i in range(d)])
sigma = struct.pack("<%dd" % (d * d), *[1.0 if i % (d + 1) == 0 else 0.0 for i in range(d * d)])
h = {"__metadata__": {"format": "aging-fid-stats", "format_version": "1"},
     "mu": {"dtype": "F64", "shape": [d], "data_offsets": [0, len(mu)]},
     "sigma": {"dtype": "F64", "shape": [d, d], "data_offsets": [len(mu), len(mu) + len(sigma)]}}
hb = json.dumps(h).encode()
hb += b" " * (-len(hb) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(hb)) + hb + mu + sigma)
PY
}

setup() {
    common_setup
    FACES=$(faces_dir)
    FACE=$(ls "$FACES"/*.jpg.chip.jpg | head -1)
}
teardown() { common_teardown; }

stream() {  # epochs
    utk-split --split train --epochs "$1" -q "$FACES" | aug --train --size 32 --seed 3
}

# Run a writer whose output is the FIFO $1 while `cat` reads it into $2;
# the FIFO must still be one afterwards.  A writer that replaced it instead
# leaves the reader waiting: it is stopped then and the call fails.
through_fifo() {
    local fifo=$1 got=$2
    shift 2
    rm -f "$fifo"
    mkfifo "$fifo"
    timeout 60 cat "$fifo" > "$got" &
    local reader=$! rc=0
    "$@" || rc=$?
    if [ ! -p "$fifo" ]; then
        kill "$reader" 2>/dev/null
        wait "$reader" || true
        echo "# $* replaced the FIFO $fifo" >&3
        return 1
    fi
    wait "$reader"
    return "$rc"
}

# The temporary files in $TMP (there should be none once writers are done).
tmp_files() {
    ls -a "$TMP" | grep '\.tmp\.' || true
}

@test "outputs: a FIFO is written in place by every kind of writer, never replaced" {
    # each writer's output to a regular file, then the same through a FIFO
    # (translate: a FIFO has no extension, so the input's format, JPEG)
    translate --y2o --ckpt "$CK" -i "$FACE" -o "$TMP/ref.jpg"
    through_fifo "$TMP/f" "$TMP/got.jpg" translate --y2o --ckpt "$CK" -i "$FACE" -o "$TMP/f"
    cmp "$TMP/ref.jpg" "$TMP/got.jpg"
    utk-split --split val -q --out "$TMP/ref.msgpack" "$FACES"
    through_fifo "$TMP/f" "$TMP/got.msgpack" utk-split --split val -q --out "$TMP/f" "$FACES"
    cmp "$TMP/ref.msgpack" "$TMP/got.msgpack"
    ckpt extract --net G "$CK" "$TMP/ref.safetensors"
    through_fifo "$TMP/f" "$TMP/got.safetensors" ckpt extract --net G "$CK" "$TMP/f"
    cmp "$TMP/ref.safetensors" "$TMP/got.safetensors"
    ckpt export "$CK" "$TMP/ref.pth"
    mkdir "$TMP/p" # the archive's root folder is named after the file: the same name
    through_fifo "$TMP/p/ref.pth" "$TMP/got.pth" ckpt export "$CK" "$TMP/p/ref.pth"
    cmp "$TMP/ref.pth" "$TMP/got.pth"
    ckpt import "$TMP/ref.pth" "$TMP/imp.safetensors"
    through_fifo "$TMP/f" "$TMP/got-imp.safetensors" ckpt import "$TMP/ref.pth" "$TMP/f"
    cmp "$TMP/imp.safetensors" "$TMP/got-imp.safetensors"
    fid --gen "$STATS" --save-stats "$TMP/ref.npz"
    through_fifo "$TMP/f.npz" "$TMP/got.npz" fid --gen "$STATS" --save-stats "$TMP/f.npz"
    cmp "$TMP/ref.npz" "$TMP/got.npz"
    fid --gen "$STATS" --save-stats "$TMP/ref.stats"
    through_fifo "$TMP/f" "$TMP/got.stats" fid --gen "$STATS" --save-stats "$TMP/f"
    cmp "$TMP/ref.stats" "$TMP/got.stats"
    # the trainer: metrics records and its checkpoint
    stream 1 > "$TMP/s1"
    through_fifo "$TMP/f" "$TMP/m.msgpack" \
        cyclegan-step "${SMALL[@]}" --max-steps 2 --log-every 1 --ckpt-out "$TMP/c.safetensors" --metrics "$TMP/f" < "$TMP/s1"
    [ "$(summary < "$TMP/m.msgpack" | grep -c metrics)" -ge 1 ]
    through_fifo "$TMP/f" "$TMP/c2.safetensors" \
        cyclegan-step "${SMALL[@]}" --max-steps 2 --log-every 0 --ckpt-out "$TMP/f" < "$TMP/s1" > /dev/null
    run cyclegan-step --ckpt "$TMP/c2.safetensors" --state
    assert_output "epoch=0 step=2 epoch_step=2"
    [ -z "$(tmp_files)" ]
}

@test "outputs: a link to a device stays a link; a link to a file has the file replaced, not the link" {
    translate --y2o --ckpt "$CK" -i "$FACE" -o "$TMP/ref.png"
    ln -s /dev/null "$TMP/null"
    translate --y2o --ckpt "$CK" -i "$FACE" -o "$TMP/null"
    utk-split --split val -q --out "$TMP/null" "$FACES"
    [ -L "$TMP/null" ] && [ -c /dev/null ]
    # a relative link, through a second link, to a file that exists and to one that does not yet
    mkdir "$TMP/d"
    echo old > "$TMP/d/real.png"
    ln -s real.png "$TMP/d/link.png"
    ln -s d/link.png "$TMP/link2.png"
    ln -s d/new.png "$TMP/dangling.png"
    translate --y2o --ckpt "$CK" -i "$FACE" -o "$TMP/link2.png"
    translate --y2o --ckpt "$CK" -i "$FACE" -o "$TMP/dangling.png"
    [ -L "$TMP/link2.png" ] && [ -L "$TMP/d/link.png" ] && [ -L "$TMP/dangling.png" ]
    cmp "$TMP/ref.png" "$TMP/d/real.png"
    cmp "$TMP/ref.png" "$TMP/d/new.png"
    [ -z "$(tmp_files)$(ls "$TMP/d" | grep '\.tmp\.' || true)" ]
    # a folder with -i is an error (FACE files go into one), not replaced
    run translate --y2o --ckpt "$CK" -i "$FACE" -o "$TMP/d"
    assert_failure 2
    assert_output --partial "-o $TMP/d is a folder"
    [ -d "$TMP/d" ]
}

@test "outputs: /dev/fd/1 and a link to /dev/stdout write to the open stdout, at its offset" {
    # no extension: the input's format, JPEG
    translate --y2o --ckpt "$CK" -i "$FACE" -o "$TMP/ref.jpg"
    { echo head; cat "$TMP/ref.jpg"; echo tail; } > "$TMP/want"
    { echo head; translate --y2o --ckpt "$CK" -i "$FACE" -o /dev/fd/1; echo tail; } > "$TMP/got"
    cmp "$TMP/want" "$TMP/got"
    # `>>` still appends; the stream writer too
    ln -s /dev/stdout "$TMP/out"
    utk-split --split val -q --out "$TMP/ref.msgpack" "$FACES"
    echo head > "$TMP/got2"
    utk-split --split val -q --out "$TMP/out" "$FACES" >> "$TMP/got2"
    { echo head; cat "$TMP/ref.msgpack"; } | cmp - "$TMP/got2"
    [ -L "$TMP/out" ]
}

@test "outputs: -o >(cmd), bash's /dev/fd/N, is written in place" {
    translate --y2o --ckpt "$CK" -i "$FACE" -o "$TMP/ref.jpg" # a pipe: the input's format
    translate --y2o --ckpt "$CK" -i "$FACE" -o >(cat > "$TMP/got.jpg")
    wait $!
    cmp "$TMP/ref.jpg" "$TMP/got.jpg"
    stream 1 > "$TMP/s1"
    cyclegan-step "${SMALL[@]}" --max-steps 2 --log-every 1 --ckpt-out "$TMP/c.safetensors" \
        --metrics >(cat > "$TMP/m.msgpack") < "$TMP/s1"
    wait $!
    [ "$(summary < "$TMP/m.msgpack" | grep -c metrics)" -ge 1 ]
}

@test "outputs: a writer killed with SIGKILL leaves a temporary file the next run removes, never a live one" {
    utk-split --split train -q "$FACES" > "$TMP/s0"
    # a writer stalled after part of its input, its temporary file (OWN) open
    stalled_writer() {  # n the-temporary-files-before
        mkfifo "$TMP/feed$1"
        ( head -c 20000 "$TMP/s0"; exec sleep 60 ) > "$TMP/feed$1" &
        FEEDER=$!
        aug --eval --size 32 --out "$TMP/out.msgpack" < "$TMP/feed$1" &
        WRITER=$!
        OWN=
        for _ in $(seq 300); do
            OWN=$(tmp_files | grep -vxF -e "${2:-/}" || true)
            [ -n "$OWN" ] && break
            sleep 0.1
        done
        [ -n "$OWN" ]
    }
    stalled_writer 1 ""
    first=$OWN
    kill -9 "$WRITER" "$FEEDER"
    wait "$WRITER" "$FEEDER" || true
    # the second writer removes the first's file as it starts, and stays alive with its own
    stalled_writer 2 "$first"
    second=$OWN
    [ "$(tmp_files)" = "$second" ]
    live=($WRITER $FEEDER)
    # a third run in the same folder, to the same name, keeps the live writer's file
    aug --eval --size 32 --out "$TMP/out.msgpack" < "$TMP/s0"
    [ "$(tmp_files)" = "$second" ]
    kill -9 "${live[@]}"
    wait "${live[@]}" || true
    # the trainer reclaims a killed save's space at its start (here a finished run shows it)
    mv "$TMP/$second" "$TMP/c.safetensors${second#out.msgpack}"
    stream 1 | cyclegan-step "${SMALL[@]}" --max-steps 1 --log-every 0 --ckpt-out "$TMP/c.safetensors" > /dev/null
    [ -z "$(tmp_files)" ]
}

@test "outputs: a write error or a failed run leaves no temporary file" {
    # utk-split's stream (file size limit: the write fails with EFBIG)
    run bash -c "trap '' XFSZ; ulimit -f 16; utk-split --split all -q --out '$TMP/s.msgpack' '$FACES'"
    assert_failure 1
    assert_output --partial "s.msgpack"
    [ ! -e "$TMP/s.msgpack" ]
    [ -z "$(tmp_files)" ]
    # the trainer's metrics, then its checkpoint, both failing
    stream 1 > "$TMP/s1"
    run bash -c "trap '' XFSZ; ulimit -f 1; cyclegan-step ${SMALL[*]} --log-every 1 --ckpt-out '$TMP/c.safetensors' --metrics '$TMP/m.msgpack' < '$TMP/s1'"
    assert_failure 1
    [ -z "$(tmp_files)" ]
}

@test "outputs: the trainer's metrics reader going away (EPIPE) saves the checkpoint, then exits 1" {
    stream 1 > "$TMP/s1"
    for fmt in msgpack json; do
        opt=$([ $fmt = json ] && echo --json || true)
        rm -f "$TMP/c.safetensors"
        cyclegan-step "${SMALL[@]}" --log-every 1 $opt --ckpt-out "$TMP/c.safetensors" < "$TMP/s1" 2> "$TMP/err" | true
        rc=${PIPESTATUS[0]}
        cat "$TMP/err"
        [ "$rc" -eq 1 ]
        grep -q "Broken pipe; saved $TMP/c.safetensors at step [0-9]* (--resume continues)" "$TMP/err"
        step=$(sed -n 's/.*at step \([0-9]*\) .*/\1/p' "$TMP/err")
        run cyclegan-step --ckpt "$TMP/c.safetensors" --state
        assert_output --partial "step=$step "
    done
}

@test "outputs: new files follow the umask; a replaced file keeps its mode" {
    (umask 022 && utk-split --split val -q --out "$TMP/a.msgpack" "$FACES")
    [ "$(stat -c %a "$TMP/a.msgpack")" = 644 ]
    (umask 027 && ckpt extract --net G "$CK" "$TMP/g.safetensors")
    [ "$(stat -c %a "$TMP/g.safetensors")" = 640 ]
    (umask 077 && translate --y2o --ckpt "$CK" -i "$FACE" -o "$TMP/a.png")
    [ "$(stat -c %a "$TMP/a.png")" = 600 ]
    chmod 664 "$TMP/a.png"
    (umask 077 && translate --y2o --ckpt "$CK" -i "$FACE" -o "$TMP/a.png")
    [ "$(stat -c %a "$TMP/a.png")" = 664 ]
}

@test "outputs: 'the previous checkpoint is intact' only when there was one" {
    run bash -c "trap '' XFSZ; ulimit -f 64; utk-split --split train -q --epochs 1 '$FACES' | aug --train --size 32 --seed 3 | cyclegan-step ${SMALL[*]} --ckpt-out '$TMP/c.safetensors' --log-every 0 > /dev/null"
    assert_failure 1
    refute_output --partial "intact"
    assert_output --partial "there was no previous checkpoint"
    [ ! -e "$TMP/c.safetensors" ]
    cp "$CK" "$TMP/c.safetensors"
    run bash -c "trap '' XFSZ; ulimit -f 64; utk-split --split train -q --epochs 1 '$FACES' | aug --train --size 32 --seed 3 | cyclegan-step ${SMALL[*]} --ckpt-out '$TMP/c.safetensors' --log-every 0 > /dev/null"
    assert_failure 1
    assert_output --partial "the previous checkpoint is intact"
    cmp "$CK" "$TMP/c.safetensors"
}

@test "outputs: a --json metrics write error is reported at the record that failed, after saving" {
    stream 1 > "$TMP/s1"
    run cyclegan-step "${SMALL[@]}" --log-every 1 --max-steps 3 --json --metrics /dev/full \
        --ckpt-out "$TMP/c.safetensors" < "$TMP/s1"
    assert_failure 1
    assert_output --partial "metrics record 'step' of step 1: writing /dev/full failed: No space left on device"
    run cyclegan-step --ckpt "$TMP/c.safetensors" --state
    assert_output "epoch=0 step=1 epoch_step=1"
}

@test "outputs: evaluate.sh --output is written as the tools write theirs (a link followed, /dev/fd/N in place)" {
    root=$(cd "$TESTS_DIR/.." && pwd)
    echo old > "$TMP/real.json"
    chmod 640 "$TMP/real.json"
    ln -s real.json "$TMP/link.json"
    bash "$root/pipelines/evaluate.sh" --ckpt "$CK" --data_dir "$FACES" --split val --device cpu --no_judge \
        --output "$TMP/link.json" > "$TMP/printed"
    [ -L "$TMP/link.json" ]
    cmp "$TMP/printed" "$TMP/real.json"
    [ "$(stat -c %a "$TMP/real.json")" = 640 ]
    bash "$root/pipelines/evaluate.sh" --ckpt "$CK" --data_dir "$FACES" --split val --device cpu --no_judge \
        --output /dev/fd/3 3> "$TMP/fd3.json" > /dev/null
    cmp "$TMP/printed" "$TMP/fd3.json"
    [ -z "$(tmp_files)" ]
}

@test "outputs: only a writer's own stale temporary files are removed" {
    sleep 0 &
    dead=$!
    wait "$dead"
    # too long a suffix, no PID (an older version's), another file's, a live process's, locked
    keep=(out.msgpack.tmp.$dead.AbC1234 out.msgpack.tmp.AbC123 other.msgpack.tmp.$dead.AbC123
          out.msgpack.tmp.$$.AbC123 out.msgpack.tmp.$dead.Locked)
    for f in "${keep[@]}" out.msgpack.tmp.$dead.AbC123; do echo x > "$TMP/$f"; done
    # a writer on another machine sharing the folder: its PID means nothing here, its lock does
    ( exec 9< "$TMP/out.msgpack.tmp.$dead.Locked"; flock 9; exec sleep 60 ) &
    holder=$!
    for _ in $(seq 50); do flock -n "$TMP/out.msgpack.tmp.$dead.Locked" true || break; sleep 0.1; done
    utk-split --split val -q --out "$TMP/out.msgpack" "$FACES"
    kill "$holder"
    wait "$holder" || true
    [ ! -e "$TMP/out.msgpack.tmp.$dead.AbC123" ]
    for f in "${keep[@]}"; do [ -f "$TMP/$f" ] || { echo "# $f removed" >&3; false; }; done
}
