#!/usr/bin/env bats
# fid: the FID Inception network against a PyTorch build of the same module tree
# (random weights: the real ones cannot be downloaded here), FID and KID against
# NumPy/SciPy on the same features, singular and tiny sets, .npz interchange with
# NumPy, and bad input.  Python side: tests/py/ref_fid.py.

load helpers

REF="$TESTS_DIR/py/ref_fid.py"
# On a loaded 2-core machine libgomp's spinning workers made a 3-image run 5x
# slower (7 s instead of 1.4 s); sleeping waits keep these tests short.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

setup_file() {
    export W="$BATS_FILE_TMPDIR/w.safetensors" WPTH="$BATS_FILE_TMPDIR/w.pth"
    # 3 young + 3 old faces after utk-split's trimming: network runs stay short
    export SMALL="$BATS_FILE_TMPDIR/small"
    "$PY" "$TESTS_DIR/py/faces.py" "$SMALL" 2 48 >/dev/null
    if has_torch; then
        # legacy (non-zip) torch.save of a plain state_dict, as pytorch-fid's file
        "$PY" "$REF" weights "$WPTH" 0
        ckpt import "$WPTH" "$W" >/dev/null
    fi
}

setup() {
    common_setup
    FACES=$(faces_dir)
}
teardown() { common_teardown; }

need_weights() {
    [ -f "$W" ] || skip "no torch to build the reference network"
}

# A few face images: real UTKFace ones when UTKFACE_DIR is set, else generated.
face_stream() {
    if [ -n "${UTKFACE_DIR:-}" ] && [ -d "$UTKFACE_DIR" ]; then
        "$PY" "$TESTS_DIR/py/streamtool.py" images $(ls -d "$UTKFACE_DIR"/*.jpg | head -3)
    else
        "$PY" "$TESTS_DIR/py/streamtool.py" images $(ls -d "$FACES"/*.jpg.chip.jpg | head -3)
    fi
}

# |a-b| <= tol*|b|
close() {
    "$PY" -c "import sys; a, b, t = map(float, sys.argv[1:]); d = abs(a - b) / max(abs(b), 1e-300); print('# %.17g vs %.17g: rel %.3g' % (a, b, d)); sys.exit(d > t)" "$@"
}

json() { # json FILE KEY
    "$PY" -c "import json, sys; print(repr(json.load(open(sys.argv[1]))[sys.argv[2]]))" "$1" "$2"
}

@test "fid: --help exits 0; bad options exit 2" {
    run fid --help
    assert_success
    assert_output --partial "usage: fid"
    run fid
    assert_failure 2
    assert_output --partial "nothing to do"
    for bad in "--ref a --convention tf" "--ref a --device tpu" "--ref a --batch 0" "--ref a extra" "--bogus"; do
        run fid $bad
        assert_failure 2
    done
}

@test "fid: without weights it says where the standard file comes from and how to convert it" {
    run env -u AGING_FID_WEIGHTS fid --save-stats "$TMP/s.stats" < /dev/null
    assert_failure 1
    assert_output --partial "pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
    assert_output --partial "ckpt import pt_inception-2015-12-05-6726825d.pth"
}

@test "fid: image records, pytorch-fid input handling: features equal PyTorch's" {
    need_weights
    face_stream > "$TMP/img"
    # batch 2 over 3 images: a full batch and a partial one
    fid --weights "$W" --kid --batch 2 --save-stats "$TMP/s.stats" < "$TMP/img"
    "$PY" "$REF" features "$WPTH" "$TMP/img" pytorch-fid "$TMP/s.stats" >&3
}

@test "fid: f32 tensor records of one domain, torchmetrics input handling: features equal" {
    need_weights
    utk-split --split all -q "$SMALL" | aug --eval --size 64 > "$TMP/t"
    fid --weights "$W" --kid --convention torchmetrics --domain old --save-stats "$TMP/s.stats" < "$TMP/t"
    "$PY" "$REF" features "$WPTH" "$TMP/t" torchmetrics "$TMP/s.stats" old >&3
    run fid --gen "$TMP/s.stats" --save-stats "$TMP/x.stats" --json
    assert_output --partial '"convention": "torchmetrics"'
}

@test "fid: a stream against reference statistics equals the statistics route" {
    need_weights
    utk-split --split all -q "$SMALL" | aug --eval --size 32 > "$TMP/t"
    AGING_PROGRESS=1 fid --weights "$W" --domain young --batch 1 --save-stats "$TMP/young.stats" < "$TMP/t" 2> "$TMP/err"
    # the progress line: utk-split's split records say how many images come
    tr '\r' '\n' < "$TMP/err" | grep -q "fid: Inception features: 3/3 images"
    fid --weights "$W" --domain old --ref "$TMP/young.stats" --save-stats "$TMP/old.stats" --json < "$TMP/t" > "$TMP/a.json"
    fid --ref "$TMP/young.stats" --gen "$TMP/old.stats" --json > "$TMP/b.json"
    [ "$(json "$TMP/a.json" fid)" = "$(json "$TMP/b.json" fid)" ]
    [ "$(json "$TMP/a.json" weights)" = "'$W'" ]
}

@test "fid: FID and KID equal NumPy/SciPy on the same features (rel <= 1e-6)" {
    "$PY" "$REF" mkstats "$TMP/a.st" 300 64 1
    "$PY" "$REF" mkstats "$TMP/b.st" 250 64 2
    fid --ref "$TMP/a.st" --gen "$TMP/b.st" --kid --kid-subsets 10 --kid-subset-size 100 --json > "$TMP/o.json"
    close "$(json "$TMP/o.json" fid)" "$("$PY" "$REF" fid "$TMP/a.st" "$TMP/b.st")" 1e-6 >&3
    read -r mean std <<< "$("$PY" "$REF" kid "$TMP/a.st" "$TMP/b.st" 10 100)"
    close "$(json "$TMP/o.json" kid_mean)" "$mean" 1e-6 >&3
    close "$(json "$TMP/o.json" kid_std)" "$std" 1e-6 >&3
    fid --ref "$TMP/a.st" --gen "$TMP/b.st" --kid --kid-subsets 10 --kid-subset-size 100 > "$TMP/o.txt"
    grep -qE '^FID: [0-9]+\.[0-9]{6}$' "$TMP/o.txt"
    grep -qE '^KID: [0-9.e-]+ ± [0-9.e-]+ \(10 subsets of 100\)$' "$TMP/o.txt"
    # the same statistics on both sides: 0
    fid --ref "$TMP/a.st" --gen "$TMP/a.st" --json > "$TMP/z.json"
    "$PY" -c "import sys; assert abs(float(sys.argv[1])) < 1e-9, sys.argv[1]" "$(json "$TMP/z.json" fid)"
}

@test "fid: singular covariances (fewer images than dimensions) and 2-image sets stay finite and exact" {
    "$PY" "$REF" mkstats "$TMP/c.st" 20 256 3
    "$PY" "$REF" mkstats "$TMP/d.st" 30 256 4
    "$PY" "$REF" mkstats "$TMP/e.st" 40 256 5 10   # rank 10
    "$PY" "$REF" mkstats "$TMP/f.st" 2 256 6
    for pair in "c d" "d c" "e f" "f e"; do
        set -- $pair
        fid --ref "$TMP/$1.st" --gen "$TMP/$2.st" --json > "$TMP/o.json"
        got=$(json "$TMP/o.json" fid)
        # exact reference: the n x n eigenproblem of the lower-rank side
        close "$got" "$("$PY" "$REF" fid-lowrank "$TMP/$1.st" "$TMP/$2.st")" 1e-9 >&3
        # pytorch-fid's sqrtm picks up rounding noise from the null directions
        close "$got" "$("$PY" "$REF" fid "$TMP/$1.st" "$TMP/$2.st")" 1e-6 >&3
    done
}

@test "fid: 2048-d statistics of 50 and 60 images (the pipeline's small-set case)" {
    "$PY" "$REF" mkstats "$TMP/g.st" 50 2048 7
    "$PY" "$REF" mkstats "$TMP/h.st" 60 2048 8
    fid --ref "$TMP/g.st" --gen "$TMP/h.st" --kid --json > "$TMP/o.json" 2>"$TMP/err"
    grep -q "KID subset size lowered from 1000 to 50" "$TMP/err"
    close "$(json "$TMP/o.json" fid)" "$("$PY" "$REF" fid-lowrank "$TMP/g.st" "$TMP/h.st")" 1e-9 >&3
    read -r mean std <<< "$("$PY" "$REF" kid "$TMP/g.st" "$TMP/h.st" 100 50)"
    close "$(json "$TMP/o.json" kid_mean)" "$mean" 1e-6 >&3
}

@test "fid: .npz statistics round trip with NumPy (savez_compressed in, savez out)" {
    "$PY" - "$TMP" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
rng = np.random.RandomState(0)
mu = rng.rand(48)
sigma = np.asfortranarray(rng.rand(48, 48))   # Fortran order, not symmetric: layout is checked
np.savez_compressed(d + "/a.npz", mu=mu, sigma=sigma)
PY
    fid --gen "$TMP/a.npz" --save-stats "$TMP/b.npz"
    "$PY" "$REF" npz-check "$TMP/a.npz" "$TMP/b.npz"
    fid --gen "$TMP/a.npz" --save-stats "$TMP/c.stats"
    fid --gen "$TMP/c.stats" --save-stats "$TMP/d.npz"
    "$PY" "$REF" npz-check "$TMP/a.npz" "$TMP/d.npz"
    # pytorch-fid's own loader and distance on our file
    "$PY" "$REF" mkstats "$TMP/x.npz" 100 32 1
    "$PY" "$REF" mkstats "$TMP/y.st" 90 32 2
    fid --gen "$TMP/y.st" --save-stats "$TMP/y.npz"
    fid --ref "$TMP/x.npz" --gen "$TMP/y.npz" --json > "$TMP/o.json"
    close "$(json "$TMP/o.json" fid)" "$("$PY" "$REF" fid "$TMP/x.npz" "$TMP/y.npz")" 1e-6 >&3
}

@test "fid: bad input is a clear error (exit 1)" {
    "$PY" "$REF" mkstats "$TMP/a.st" 30 64 1
    "$PY" "$REF" mkstats "$TMP/c.st" 30 256 3
    "$PY" "$REF" mkstats "$TMP/a.npz" 30 64 1
    run fid --ref "$TMP/a.st" --gen "$TMP/c.st"
    assert_failure 1
    assert_output --partial "has 64 dimensions but $TMP/c.st has 256"
    run fid --ref "$TMP/a.npz" --gen "$TMP/a.npz" --kid
    assert_failure 1
    assert_output --partial "KID needs the features"
    printf 'PK\003\004garbage' > "$TMP/bad.npz"
    run fid --ref "$TMP/bad.npz" --gen "$TMP/a.st"
    assert_failure 1
    assert_output --partial "bad.npz"
    # weights of the wrong network: our statistics file, and a mis-shaped first conv
    run fid --weights "$TMP/a.st" --ref "$TMP/a.st" < /dev/null
    assert_failure 1
    assert_output --partial "missing tensor 'Conv2d_1a_3x3.conv.weight'"
    assert_output --partial "not the FID Inception weights"
    "$PY" - "$TMP/wrong.safetensors" "$TESTS_DIR/py" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
import numpy as np
from ref_fid import st_write
st_write(sys.argv[1], {"Conv2d_1a_3x3.conv.weight": np.zeros((32, 3, 5, 5), "<f4")})
PY
    run fid --weights "$TMP/wrong.safetensors" --ref "$TMP/a.st" < /dev/null
    assert_failure 1
    assert_output --partial "Conv2d_1a_3x3.conv.weight' has shape [32,3,5,5]"
    need_weights
    # an empty stream, a stream without the domain, one image, garbage
    run fid --weights "$W" --ref "$TMP/a.st" < /dev/null
    assert_failure 1
    assert_output --partial "no images in the input"
    face_stream > "$TMP/img"   # all 'young'
    run fid --weights "$W" --domain old --save-stats "$TMP/s.stats" < "$TMP/img"
    assert_failure 1
    assert_output --partial "no old images in the input"
    "$PY" "$TESTS_DIR/py/streamtool.py" images $(ls -d "$FACES"/*.jpg.chip.jpg | head -1) > "$TMP/one"
    run fid --weights "$W" --save-stats "$TMP/s.stats" < "$TMP/one"
    assert_failure 1
    assert_output --partial "a covariance needs at least 2"
    head -c $(( $(stat -c %s "$TMP/img") - 100 )) "$TMP/img" > "$TMP/trunc"
    run fid --weights "$W" --save-stats "$TMP/s.stats" < "$TMP/trunc"
    assert_failure 1
    assert_output --partial "record 3: truncated"
    [ ! -e "$TMP/s.stats" ]
}

@test "fid: a small JPEG that declares a large image is refused from its header (--max-pixels)" {
    need_weights
    "$PY" "$TESTS_DIR/py/hostile_jpeg.py" huge "$TMP/huge.jpg" 8000 8000 # 631 bytes: 1.9 GB, 24 s before
    "$PY" "$TESTS_DIR/py/streamtool.py" images "$TMP/huge.jpg" "$TMP/huge.jpg" > "$TMP/huge.rec"
    run /usr/bin/time -f "%M" -o "$TMP/rss" fid --weights "$W" --save-stats "$TMP/s.stats" < "$TMP/huge.rec"
    assert_failure 1
    assert_output --partial "8000x8000 exceeds the limit of 16777216 pixels"
    echo "# peak RSS $(tail -1 "$TMP/rss") KB (the network's weights included)" >&3
    [ "$(tail -1 "$TMP/rss")" -lt 600000 ]
    run fid --weights "$W" --max-pixels 67108864 --save-stats "$TMP/s.stats" < "$TMP/huge.rec"
    assert_failure 1
    assert_output --partial "premature end of data segment"
    [ ! -e "$TMP/s.stats" ]
}
