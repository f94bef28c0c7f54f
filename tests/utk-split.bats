#!/usr/bin/env bats
# utk-split: the reference split (counts, order), options and bad input.

load helpers

setup() { common_setup; FACES=$(faces_dir); }
teardown() { common_teardown; }

@test "utk-split: --help prints usage and exits 0" {
    run utk-split --help
    assert_success
    assert_output --partial "usage: utk-split"
}

@test "utk-split: a bad option or value exits 2 with a usage line" {
    run utk-split --bogus "$FACES"
    assert_failure 2
    run utk-split --split nope "$FACES"
    assert_failure 2
    assert_output --partial "utk-split: --split: expected train, val, test or all"
    run utk-split --epochs x "$FACES"
    assert_failure 2
    assert_output --partial "is not an integer"
    run utk-split
    assert_failure 2
    assert_output --partial "missing the UTKFace folder"
}

@test "utk-split: a missing folder or one with no faces exits 1 with a message" {
    run utk-split "$TMP/nowhere"
    assert_failure 1
    assert_output --partial "utk-split: $TMP/nowhere: No such file or directory"
    mkdir "$TMP/empty"; echo hi > "$TMP/empty/notes.txt"
    run utk-split "$TMP/empty"
    assert_failure 1
    assert_output --partial "no young or old faces found"
    assert_output --partial "data/README.md"
}

@test "utk-split: --list reproduces the PyTorch reference split exactly" {
    has_torch || skip "no torch"
    for seed in 42 7; do
        utk-split --list --split all --seed $seed -q "$FACES" > "$TMP/ours"
        "$PY" "$TESTS_DIR/py/utk_split_ref.py" "$FACES" $seed > "$TMP/ref"
        run diff "$TMP/ours" "$TMP/ref"
        assert_success
    done
}

@test "utk-split: counts follow floor(0.8n)/floor(0.9n) with young and old trimmed" {
    run utk-split --list --split all "$FACES"
    assert_success
    # 13 young (one PNG) -> 10/1/2, 15 old -> 12/1/2: trimmed to 10/1/2 of each
    assert_output --partial "utk-split: train 10 young + 10 old"
    assert_output --partial "utk-split: val   1 young + 1 old"
    assert_output --partial "utk-split: test  2 young + 2 old"
    assert_output --partial "2 bad names"
    assert_output --partial "1 not images"
    [ "$(utk-split --list --split train -q "$FACES" | wc -l)" -eq 20 ]
}

@test "utk-split: splits are disjoint, seeds are deterministic" {
    utk-split --list --split all -q "$FACES" | cut -f1 | sort > "$TMP/all"
    [ "$(uniq -d < "$TMP/all" | wc -l)" -eq 0 ]
    utk-split --list --split all --seed 5 -q "$FACES" > "$TMP/a"
    utk-split --list --split all --seed 5 -q "$FACES" > "$TMP/b"
    utk-split --list --split all --seed 6 -q "$FACES" > "$TMP/c"
    cmp "$TMP/a" "$TMP/b"
    run cmp -s "$TMP/a" "$TMP/c"
    assert_failure
    [ "$(sort "$TMP/a" | cut -f1)" != "" ]
}

@test "utk-split: image records carry the file bytes and metadata" {
    utk-split --split val -q "$FACES" | summary > "$TMP/s"
    [ "$(wc -l < "$TMP/s")" -eq 3 ]
    # first a split record saying how many pairs follow (for progress lines)
    head -1 "$TMP/s" | grep -qx '{"kind": "split", "pairs": 1, "split": "val"}'
    run cat "$TMP/s"
    assert_output --partial '"kind": "image"'
    assert_output --partial '"domain": "young"'
    assert_output --partial '"domain": "old"'
    assert_output --partial '"encoding": "jpeg"'
    id=$(grep -m1 "\"kind\": \"image\"" "$TMP/s" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    n=$(grep -m1 "\"kind\": \"image\"" "$TMP/s" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["nbytes"])')
    [ "$n" -eq "$(stat -c %s "$FACES/$id")" ]
}

@test "utk-split: --epochs re-emits train reshuffled with epoch records" {
    utk-split --split train --epochs 3 -q "$FACES" | summary > "$TMP/s"
    [ "$(grep -c '"kind": "epoch"' "$TMP/s")" -eq 3 ]
    [ "$(grep -c '"kind": "image"' "$TMP/s")" -eq 60 ]
    grep -q '"epoch": 3, "epochs": 3' "$TMP/s"
    # each epoch holds the same faces in another order
    "$PY" - "$TMP/s" <<'PY'
import json, sys
eps, cur = [], None
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["kind"] == "epoch":
        cur = []; eps.append(cur)
    else:
        cur.append(r["id"])
assert all(sorted(e) == sorted(eps[0]) for e in eps), "epochs differ in content"
assert eps[0] != eps[1] and eps[1] != eps[2], "epochs not reshuffled"
PY
}

@test "utk-split --epochs: the reference's pairing (young i with old i, pairs in torch.randperm order each epoch, the first too); --pairing independent" {
    has_torch || skip "no torch"
    utk-split --split train --list -q "$FACES" > "$TMP/split"
    for p in reference independent; do
        utk-split --split train --epochs 3 --pairing $p --seed 42 -q "$FACES" | summary > "$TMP/$p"
    done
    utk-split --split train --epochs 3 --limit 4 --seed 42 -q "$FACES" | summary > "$TMP/lim"
    "$PY" - "$TMP/split" "$TMP/reference" "$TMP/independent" "$TMP/lim" <<'PY'
import json, sys, torch
split = [l.split("\t")[0] for l in open(sys.argv[1])]
pairs = [(split[i], split[i + 1]) for i in range(0, len(split), 2)]  # y0 o0 y1 o1 ...
def epochs(path):
    eps, cur = [], None
    for l in open(path):
        r = json.loads(l)
        if r["kind"] == "epoch":
            cur = []; eps.append(cur)
        elif r["kind"] == "image":
            cur.append(r["id"])
    return [[(e[i], e[i + 1]) for i in range(0, len(e), 2)] for e in eps]
def perm(n, k):  # RandomSampler-like: a permutation of the pair indices per epoch
    return torch.randperm(n, generator=torch.Generator().manual_seed(42 + k - 1)).tolist()
ref = epochs(sys.argv[2])
for k, e in enumerate(ref, 1):
    assert e == [pairs[i] for i in perm(len(pairs), k)], "epoch %d" % k
assert ref[0] != pairs, "the first epoch is shuffled too"
ind = epochs(sys.argv[3])
assert ind[0] == pairs and set(ind[1]) != set(pairs), "independent: split order, then new pairs"
lim = epochs(sys.argv[4])  # --limit caps the set (the first 4 pairs), then shuffles it
for k, e in enumerate(lim, 1):
    assert e == [pairs[i] for i in perm(4, k)], "limit, epoch %d" % k
print("# %d pairs, 3 epochs: the reference's pairing and order" % len(pairs))
PY
    run utk-split --pairing sideways "$FACES"
    assert_failure 2
}

@test "utk-split: --limit, --exclude, --young/--old, --strict" {
    [ "$(utk-split --list --split train --limit 2 -q "$FACES" | wc -l)" -eq 4 ]
    # the summary says what was emitted
    utk-split --split train --limit 2 "$FACES" 2>&1 > /dev/null | grep -q "train 2 young + 2 old emitted (--limit 2 of 10 each)"
    first=$(utk-split --list --split train -q "$FACES" | head -1 | cut -f1)
    printf 'UTKFace/%s\t0.99\n' "$first" > "$TMP/excl"
    run utk-split --list --split all --exclude "$TMP/excl" "$FACES"
    assert_success
    assert_output --partial "1 excluded"
    refute_output --partial "$first"
    run utk-split --list --split all --young 18:20 --old 60 -q "$FACES"
    assert_success
    run utk-split --strict --list "$FACES"
    assert_failure 1
    assert_output --partial "does not parse"
    run utk-split --old 20 "$FACES"
    assert_failure 2
    assert_output --partial "overlap"
}

@test "utk-split: writes to a file atomically with --out" {
    utk-split --split test -q --out "$TMP/test.msgpack" "$FACES"
    [ "$(summary < "$TMP/test.msgpack" | grep -c '"kind": "image"')" -eq 4 ]
    [ -z "$(ls "$TMP" | grep tmp)" ]
}

@test "utk-split: real UTKFace counts match the reference (UTKFACE_DIR)" {
    [ -n "${UTKFACE_DIR:-}" ] && [ -d "$UTKFACE_DIR" ] || skip "UTKFACE_DIR not set"
    utk-split --list --split all --seed 42 "$UTKFACE_DIR" > "$TMP/ours" 2> "$TMP/err"
    cat "$TMP/err" >&3
    if has_torch; then
        "$PY" "$TESTS_DIR/py/utk_split_ref.py" "$UTKFACE_DIR" 42 > "$TMP/ref"
        cmp "$TMP/ours" "$TMP/ref"
    fi
    ny=$(ls "$UTKFACE_DIR" | awk -F_ '$1 ~ /^[0-9]+$/ && $1 >= 18 && $1 <= 28' | wc -l)
    no=$(ls "$UTKFACE_DIR" | awk -F_ '$1 ~ /^[0-9]+$/ && $1 >= 40' | wc -l)
    tr=$(( ny * 8 / 10 < no * 8 / 10 ? ny * 8 / 10 : no * 8 / 10 ))
    [ "$(grep -c $'\ttrain$' "$TMP/ours")" -eq $((2 * tr)) ]
    [ "$(cut -f1 "$TMP/ours" | sort | uniq -d | wc -l)" -eq 0 ]
}

@test "utk-split: --start-epoch K emits epochs K..N exactly as a full run does" {
    utk-split --split train --epochs 3 -q "$FACES" > "$TMP/full"
    utk-split --split train --epochs 3 --start-epoch 2 -q "$FACES" > "$TMP/tail"
    full=$(stat -c %s "$TMP/full"); tail=$(stat -c %s "$TMP/tail")
    # the tail is the last two thirds of the full stream, byte for byte
    cmp <(tail -c "$tail" "$TMP/full") "$TMP/tail"
    [ "$tail" -lt "$full" ]
    run utk-split --split train --epochs 3 --start-epoch 4 "$FACES"
    assert_failure 2
    # one epoch at a time concatenates to the whole run
    for e in 1 2 3; do utk-split --split train --epochs 3 --start-epoch $e --stop-epoch $e -q "$FACES"; done > "$TMP/each"
    cmp "$TMP/full" "$TMP/each"
}

@test "utk-split: FIFOs, devices and folders in DIR are skipped and counted, never opened (--strict: an error)" {
    cp -r "$FACES" "$TMP/f"
    utk-split --split all -q "$TMP/f" > "$TMP/before"
    # a FIFO named like a young face, a link to another, a link to a folder
    mkfifo "$TMP/f/25_1_0_20170111000097.jpg.chip.jpg" "$TMP/fifo"
    ln -s "$TMP/fifo" "$TMP/f/26_1_0_20170111000098.jpg.chip.jpg"
    ln -s /tmp "$TMP/f/27_1_0_20170111000099.jpg.chip.jpg"
    ln -s /dev/zero "$TMP/f/41_1_0_20170111000099.jpg.chip.jpg"
    run timeout 20 utk-split --split all --out "$TMP/after" "$TMP/f"
    assert_success
    assert_output --partial "0 excluded, 4 not regular files"
    cmp "$TMP/before" "$TMP/after"
    run timeout 20 utk-split --split all --strict -q "$TMP/f"
    assert_failure 1
    assert_output --regexp "utk-split: $TMP/f: not a regular file: [0-9]+_1_0_201701110000(97|98|99).jpg.chip.jpg"
}

@test "utk-split: --list escapes tabs, newlines and backslashes in file names" {
    mkdir "$TMP/odd"
    touch "$TMP/odd/"$'20_1_0_a\tb.jpg.chip.jpg' "$TMP/odd/"$'21_1_0_a\nb.jpg.chip.jpg' \
        "$TMP/odd/"'22_1_0_a\b.jpg.chip.jpg' "$TMP/odd/"$'23_1_0_a\001b.jpg.chip.jpg'
    for a in 50 51 52 53; do touch "$TMP/odd/${a}_1_0_x.jpg.chip.jpg"; done
    utk-split --list --split all -q "$TMP/odd" > "$TMP/list"
    # one line per face, four fields each
    [ "$(wc -l < "$TMP/list")" -eq 8 ]
    [ -z "$(awk -F'\t' 'NF != 4' "$TMP/list")" ]
    grep -qF '20_1_0_a\tb.jpg.chip.jpg' "$TMP/list"
    grep -qF '21_1_0_a\nb.jpg.chip.jpg' "$TMP/list"
    grep -qF '22_1_0_a\\b.jpg.chip.jpg' "$TMP/list"
    grep -qF '23_1_0_a\001b.jpg.chip.jpg' "$TMP/list"
}

@test "utk-split: a file name that is not UTF-8 is written as a bin id, which Python's reader takes" {
    cp -r "$FACES" "$TMP/f"
    young=$(ls "$TMP/f" | grep '^2[0-9]_' | head -1)
    mv "$TMP/f/$young" "$TMP/f/"$'20_1_0_caf\xe9.jpg.chip.jpg'   # Latin-1, not UTF-8
    mv "$TMP/f/$(ls "$TMP/f" | grep '^2[0-9]_' | grep -v caf | head -1)" "$TMP/f/21_1_0_café.jpg.chip.jpg"
    utk-split --split all -q "$TMP/f" > "$TMP/s"
    "$PY" - "$TMP/s" "$TMP/f" <<'PY'
import os, sys, msgpack
ids = [r["id"] for r in msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False) if r["kind"] == "image"]
assert b"20_1_0_caf\xe9.jpg.chip.jpg" in ids, ids       # bytes: the name exactly
assert "21_1_0_café.jpg.chip.jpg" in ids, ids           # valid UTF-8 stays a str
assert all(type(i) is str for i in ids if i != b"20_1_0_caf\xe9.jpg.chip.jpg")
assert os.path.exists(os.path.join(sys.argv[2], os.fsdecode(b"20_1_0_caf\xe9.jpg.chip.jpg")))
PY
    # the tools pass such a record through
    utk-split --split all -q "$TMP/f" | aug --eval --size 32 | "$PY" -c '
import sys, msgpack
ids = [r["id"] for r in msgpack.Unpacker(sys.stdin.buffer, raw=False) if r["kind"] == "tensor"]
assert b"20_1_0_caf\xe9.jpg.chip.jpg" in ids, ids'
}

@test "utk-split: a file over 256 MiB is skipped from its size and counted, never read (--strict: an error)" {
    cp -r "$FACES" "$TMP/f"
    utk-split --split all -q "$TMP/f" > "$TMP/before"
    truncate -s 300M "$TMP/f/45_1_0_20170111000001.jpg.chip.jpg"  # an old face (sparse)
    run /usr/bin/time -f "%M" -o "$TMP/rss" timeout 20 utk-split --split all --out "$TMP/after" "$TMP/f"
    assert_success
    assert_output --partial "1 over 256 MiB"
    cmp "$TMP/before" "$TMP/after"
    [ "$(tail -1 "$TMP/rss")" -lt 100000 ]
    run utk-split --split all --strict -q "$TMP/f"
    assert_failure 1
    assert_output --partial "larger than 268435456 bytes: 45_1_0_20170111000001.jpg.chip.jpg"
}
