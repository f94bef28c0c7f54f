#!/usr/bin/env bash
# bench/gpu.sh: the CUDA backend's speed next to PyTorch's on the same GPU,
# measured in the same run (the reference model: ngf 32, 9 blocks, ndf 32):
#   - cyclegan-step images/s (per domain: a step of batch B trains on B young
#     and B old faces, as PyTorch's images_per_s) at 256 px, batch 1, 4 and
#     16, fp32 and bf16 (and fp16 at the largest batch), fed from a
#     pre-generated tensor stream file (the feed costs next to nothing), and
#     in bf16 fed by `aug --train` workers over ZeroMQ as pipelines/train.sh
#     runs them (utk-split | aug --shard k/W ... | cyclegan-step --producers W);
#   - translate latency per image at batch 1 (tensor stream in and out,
#     fp32 and bf16: the time of N+n images minus that of N, over n);
#   - PyTorch (torch_cyclegan_bench.py: eager fp32/bf16/fp16, torch.compile
#     bf16 last, as time allows) on the same configurations, with inputs
#     already on the GPU;
#   - a table with ours/torch ratios and our achieved TFLOP/s from the conv
#     multiply-adds of the architecture (flops() below; a training step runs 6
#     generator and 6 discriminator passes, each forward + input gradient +
#     weight gradient ~ 3x the forward's MACs, 2 FLOP per MAC, as
#     bench/train_step.c counts), against the H200's dense peaks: bf16/fp16
#     989 TFLOP/s (790 measured for a large GEMM), fp32 67 TFLOP/s (CUDA
#     cores: our fp32 convolutions use no TF32; PyTorch's cuDNN allows TF32
#     by default, so torch fp32 is not the same arithmetic).
# Timed: WARM steps then STEPS steps per configuration, the mean of the timed
# steps (from cyclegan-step's per-step "throughput" records).  The whole run
# keeps to BENCH_BUDGET_S seconds (240): what does not fit is reported as
# skipped, PyTorch's compile last.  Not a test: nothing fails on timing.
#   AGING_GPU_DEVICE  backend (cuda); TORCH_PY / TORCH_BENCH: the PyTorch side
#   BENCH_QUICK=1     tiny sizes and steps, e.g. AGING_GPU_DEVICE=cpu on a CPU
#                     machine, to check the script itself
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
DEV=${AGING_GPU_DEVICE:-cuda}
export PATH="${BIN_DIR:-$root/bin}:$PATH" OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
export AGING_STREAM_TIMEOUT=${AGING_STREAM_TIMEOUT:-120}
ncpu=$(nproc)
NGF=32 NDF=32 BLOCKS=9
if [ -n "${BENCH_QUICK:-}" ]; then
    SIZE=32 BATCHES="1 2" WARM=1 STEPS=2 NFACES=8 FACE_PX=64 TR_COPIES=1 WORKERS=${BENCH_WORKERS:-2}
else
    SIZE=256 BATCHES="1 4 16" WARM=3 STEPS=15 NFACES=24 FACE_PX=200 TR_COPIES=4
    WORKERS=${BENCH_WORKERS:-$((ncpu / 2 < 8 ? (ncpu / 2 > 0 ? ncpu / 2 : 1) : 8))}
fi
BIG=${BATCHES##* }
BUDGET=${BENCH_BUDGET_S:-240}
t0=$SECONDS
tmp=$(mktemp -d "${TMPDIR:-/tmp}/aging-gpu-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

note() { echo "# $*"; }
left() { echo $((BUDGET - (SECONDS - t0))); }
# lim CAP command...: run it for at most CAP seconds and never past the budget
lim() {
    local cap=$1 l
    shift
    l=$(left)
    [ "$l" -gt 5 ] || return 125
    [ "$l" -lt "$cap" ] && cap=$l
    timeout "$cap" "$@"
}

# Conv multiply-adds of the architecture (the layer lists of lib/nn/model.c and
# torch_cyclegan_bench.py) -> GFLOP of a training step per image, GFLOP of a
# generator forward, GMAC of G and of D.
flops() {  # size ngf blocks ndf
    awk -v s="$1" -v c="$2" -v nb="$3" -v d="$4" '
    function conv(cin, cout, k, hw) { return hw * hw * cin * cout * k * k }      # hw x hw output
    function convt(cin, cout, k, hw) { return hw * hw * cin * cout * k * k }     # hw x hw input
    BEGIN {
        g = conv(3, c, 7, s) + conv(c, 2 * c, 3, s / 2) + conv(2 * c, 4 * c, 3, s / 4) \
            + 2 * nb * conv(4 * c, 4 * c, 3, s / 4) + convt(4 * c, 2 * c, 3, s / 4) + convt(2 * c, c, 3, s / 2) \
            + conv(c, 3, 7, s)
        h = s / 8
        dm = conv(3, d, 4, s / 2) + conv(d, 2 * d, 4, s / 4) + conv(2 * d, 4 * d, 4, h) \
             + conv(4 * d, 8 * d, 4, h - 1) + conv(8 * d, 1, 4, h - 2)
        printf "%.4f %.4f %.4f %.4f\n", 3 * 2 * (6 * g + 6 * dm) / 1e9, 2 * g / 1e9, g / 1e9, dm / 1e9
    }'
}
read -r TRAIN_GF INFER_GF G_GMAC D_GMAC <<<"$(flops "$SIZE" $NGF $BLOCKS $NDF)"
note "device $DEV, ${SIZE}x$SIZE, ngf $NGF, $BLOCKS blocks, ndf $NDF: G ${G_GMAC} GMAC, D ${D_GMAC} GMAC per image;" \
     "a training step ${TRAIN_GF} GFLOP per image, a generator forward ${INFER_GF} GFLOP"
note "timed: $WARM warm-up + $STEPS steps per configuration; budget ${BUDGET} s; $WORKERS aug workers for real input"

# ---- inputs: fixture faces (tests/py/faces.py, UTKFace-like JPEGs), a tensor
# stream file with enough images of each domain for the largest batch
pick_python() {  # a python3 that imports $1
    local p
    for p in ${TORCH_PY:-} python3 /usr/bin/python3; do
        "$p" -c "import $1" 2>/dev/null && { echo "$p"; return 0; }
    done
    return 1
}
PY=$(pick_python PIL) || { echo "bench/gpu.sh: no python3 with Pillow to draw the faces" >&2; exit 1; }
faces=$tmp/faces
"$PY" "$root/tests/py/faces.py" "$faces" "$NFACES" "$FACE_PX" >/dev/null
utk-split --split all "$faces" 2> "$tmp/split.txt" | aug --eval --size "$SIZE" > "$tmp/one.msgpack"
# images in one.msgpack, from utk-split's summary "N files kept (Y young, O old)"
ONE_N=$(sed -n 's/.*kept (\([0-9]*\) young, \([0-9]*\) old).*/\1 \2/p' "$tmp/split.txt" | awk '{ print $1 + $2 }')
need=$((BIG * (WARM + STEPS)))
for _ in $(seq $((need / NFACES + 1))); do cat "$tmp/one.msgpack"; done > "$tmp/synth.msgpack"
note "inputs ready after $((SECONDS - t0)) s: $(du -h "$tmp/synth.msgpack" | cut -f1) tensor stream"

declare -A R # "who mode batch precision input" -> "img/s ms"

# Mean ms of the timed steps from cyclegan-step's JSON records -> "img/s ms".
step_rate() {  # metrics.jsonl batch
    awk -v b="$2" -v warm="$WARM" '
    /"phase": "step"/ && match($0, /"throughput": [-0-9.eE+]+/) {
        v = substr($0, RSTART + 14, RLENGTH - 14) + 0
        if (++n > warm && v > 0) { ms += 2 * b * 1000 / v; k++ }
    }
    END { if (k) printf "%.2f %.2f\n", b * 1000 * k / ms, ms / k }' "$1" 2>/dev/null
}

ours_train() {  # precision batch synth|real
    local p=$1 b=$2 src=$3 key="ours train $2 $1 $3" m=$tmp/m.jsonl rc=0 k reps ep pids=()
    [ "$(left)" -gt 30 ] || { note "$key: skipped (time budget)"; return; }
    rm -f "$m"
    local step=(cyclegan-step --device "$DEV" --precision "$p" --batch "$b" --ngf "$NGF" --ndf "$NDF" --blocks "$BLOCKS"
                --max-steps $((WARM + STEPS)) --log-every 1 --json --metrics "$m"
                --ckpt-out "$tmp/ck.$p.$b.$src.safetensors")
    if [ "$src" = synth ]; then
        lim 150 "${step[@]}" < "$tmp/synth.msgpack" > /dev/null 2> "$tmp/err" || rc=$?
    else
        # passes over the faces so that every domain has enough images; the workers still
        # running when the trainer has its steps are stopped
        reps=$((b * (WARM + STEPS) / NFACES + 2))
        if [ "$WORKERS" -le 1 ]; then
            for _ in $(seq $reps); do utk-split --split all -q "$faces"; done \
                | aug --train --size "$SIZE" --seed 1 | lim 150 "${step[@]}" > /dev/null 2> "$tmp/err" || rc=$?
        else
            ep="ipc://$tmp/feed.$p.$b"
            lim 150 "${step[@]}" --in "@$ep" --producers "$WORKERS" > /dev/null 2> "$tmp/err" &
            local trainer=$!
            for ((k = 0; k < WORKERS; k++)); do
                for _ in $(seq $reps); do utk-split --split all -q "$faces"; done \
                    | OMP_NUM_THREADS=$((ncpu / WORKERS > 0 ? ncpu / WORKERS : 1)) aug --train --size "$SIZE" \
                      --seed $((k + 1)) --shard "$k/$WORKERS" --out "$ep" --producers "$WORKERS" 2>/dev/null &
                pids+=($!)
            done
            wait "$trainer" || rc=$?
            for k in "${pids[@]}"; do kill "$k" 2>/dev/null; done
            wait "${pids[@]}" 2>/dev/null
        fi
    fi
    local r
    r=$(step_rate "$m" "$b")
    if [ "$rc" -ne 0 ] || [ -z "$r" ]; then
        note "$key: failed (exit $rc): $(tail -2 "$tmp/err" | tr '\n' ' ')"
        return
    fi
    R[$key]=$r
    note "$key: ${r% *} img/s, ${r#* } ms/step"
}

# Seconds a translate of one stream file takes (process start included).
translate_time() {  # precision checkpoint file
    local s=$EPOCHREALTIME
    lim 60 translate --y2o --stream --all --ckpt "$2" --device "$DEV" --precision "$1" < "$3" > /dev/null \
        2> "$tmp/err" || return 1
    awk -v s="$s" -v e="$EPOCHREALTIME" 'BEGIN{print e - s}'
}

# translate: per-image latency from the time of N+n images minus that of N.
ours_translate() {  # precision
    local p=$1 key="ours infer 1 $1 synth" ck a b
    ck=$tmp/ck.fp32.1.synth.safetensors
    [ -f "$ck" ] || ck=$(find "$tmp" -name 'ck.*.safetensors' | head -1)
    [ -n "$ck" ] || { note "$key: skipped (no checkpoint from the training runs)"; return; }
    [ "$(left)" -gt 20 ] || { note "$key: skipped (time budget)"; return; }
    if ! a=$(translate_time "$p" "$ck" "$tmp/tr_a.msgpack") || ! b=$(translate_time "$p" "$ck" "$tmp/tr_b.msgpack"); then
        note "$key: failed: $(tail -1 "$tmp/err")"
        return
    fi
    local ms
    ms=$(awk -v a="$a" -v b="$b" -v n="$TR_N" 'BEGIN{printf "%.2f", (b - a) * 1000 / n}')
    R[$key]="$(awk -v ms="$ms" 'BEGIN{printf "%.2f", (ms > 0 ? 1000 / ms : 0)}') $ms"
    note "$key: $ms ms per image ($((4 + TR_N)) images in $(printf %.2f "$b") s, 4 in $(printf %.2f "$a") s," \
         "process start in both)"
}

TORCH_PY=$(pick_python torch || true)
TORCH_BENCH=${TORCH_BENCH:-}
for f in "$root/.gpu/torch_cyclegan_bench.py" /work/shared/bench/torch_cyclegan_bench.py; do
    [ -n "$TORCH_BENCH" ] || { [ -f "$f" ] && TORCH_BENCH=$f; }
done
if [ -z "$TORCH_PY" ] || [ -z "$TORCH_BENCH" ]; then
    note "PyTorch side skipped: python3 with torch '${TORCH_PY}', bench script '${TORCH_BENCH}'"
else
    note "PyTorch: $("$TORCH_PY" -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")' 2>&1 | tail -1)"
fi

torch_run() {  # cap mode batch precision [--compile]
    local cap=$1 mode=$2 b=$3 p=$4 c=${5:-} key out ms ips
    key="torch${c:+ compile} $mode $b $p synth"
    [ -n "$TORCH_PY" ] && [ -n "$TORCH_BENCH" ] || return 0
    # a compile cut short by the budget measures nothing: start it only with time for it
    local need=20
    [ -z "$c" ] || need=$((cap * 2 / 3))
    [ "$(left)" -gt "$need" ] || { note "$key: skipped (time budget)"; return; }
    out=$(PYTHONUNBUFFERED=1 lim "$cap" "$TORCH_PY" "$TORCH_BENCH" --mode "$mode" --batch "$b" --img "$SIZE" \
          --precision "$p" --warmup "$WARM" --steps "$STEPS" ${c:+"$c"} 2> "$tmp/terr" | tail -1)
    ms=$(sed -n 's/.*"ms_per_step": \([0-9.eE+-]*\).*/\1/p' <<<"$out")
    ips=$(sed -n 's/.*"images_per_s": \([0-9.eE+-]*\).*/\1/p' <<<"$out")
    if [ -z "$ms" ]; then
        note "$key: failed: $(grep -v '^ *$' "$tmp/terr" | tail -1 | grep . || echo "no result within the time allowed")"
        return
    fi
    R[$key]="$ips $ms"
    note "$key: $ips img/s, $ms ms/step (warm-up $(sed -n 's/.*"warmup_s": \([0-9.]*\).*/\1/p' <<<"$out") s," \
         "peak $(sed -n 's/.*"peak_mib": \([0-9a-z]*\).*/\1/p' <<<"$out") MiB on the GPU)"
}

# ---- measurements, most important first (the budget cuts the tail)
for b in $BATCHES; do
    for p in fp32 bf16; do
        ours_train $p "$b" synth
        torch_run 60 train "$b" $p
    done
done
# translate: 4 images, and the same 4 followed by TR_COPIES copies of one.msgpack
utk-split --split train --limit 2 -q "$faces" | aug --eval --size "$SIZE" > "$tmp/tr_a.msgpack"
{ cat "$tmp/tr_a.msgpack"; for _ in $(seq "$TR_COPIES"); do cat "$tmp/one.msgpack"; done; } > "$tmp/tr_b.msgpack"
TR_N=$((TR_COPIES * ONE_N))
for p in fp32 bf16; do
    ours_translate $p
    torch_run 40 infer 1 $p
done
for b in $BATCHES; do
    ours_train bf16 "$b" real
done
ours_train fp16 "$BIG" synth
torch_run 60 train "$BIG" fp16
ours_translate fp16
torch_run 40 infer 1 fp16
torch_run 150 train "$BIG" bf16 --compile
torch_run 90 infer 1 bf16 --compile

# ---- the table
peak() {  # precision -> dense TFLOP/s of the H200 (PEAK_FP32 / PEAK_16 override)
    case $1 in fp32) echo "${PEAK_FP32:-67}" ;; *) echo "${PEAK_16:-989}" ;; esac
}
col() { [ -n "${R[$1]:-}" ] && echo "${R[$1]% *}" || echo "-"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
echo
echo "== bench/gpu.sh: $DEV, ${SIZE}x$SIZE, ngf $NGF / $BLOCKS blocks / ndf $NDF (images/s per domain; infer: per image)"
printf '%-28s %9s %9s %8s %6s | %9s %6s %9s %6s\n' "config" "ours" "ms" "TFLOP/s" "%peak" "torch" "ratio" "compile" "ratio"
row() {  # mode batch precision input
    local key="ours $1 $2 $3 $4" o ms tf pk t tc gf
    o=$(col "$key")
    ms=$([ -n "${R[$key]:-}" ] && echo "${R[$key]#* }" || echo "-")
    gf=$([ "$1" = train ] && echo "$TRAIN_GF" || echo "$INFER_GF")
    tf=$(awk -v o="$o" -v g="$gf" 'BEGIN{ if (o == "-") print "-"; else printf "%.3g", o * g / 1000 }')
    pk=$(awk -v t="$tf" -v p="$(peak "$3")" 'BEGIN{ if (t == "-") print "-"; else printf "%.3g%%", 100 * t / p }')
    t=$(col "torch $1 $2 $3 synth")
    tc=$(col "torch compile $1 $2 $3 synth")
    printf '%-28s %9s %9s %8s %6s | %9s %6s %9s %6s\n' "$1 b$2 $3 $4" "$o" "$ms" "$tf" "$pk" "$t" "$(ratio "$o" "$t")" \
        "$tc" "$(ratio "$o" "$tc")"
}
for b in $BATCHES; do
    for p in fp32 bf16; do row train "$b" $p synth; done
    row train "$b" bf16 real
done
row train "$BIG" fp16 synth
for p in fp32 bf16 fp16; do row infer 1 $p synth; done
echo "ours/torch > 1: ours faster.  'real': fed by $WORKERS aug --train workers (torch's inputs sit on the GPU)." \
     "%peak: of ${PEAK_16:-989} TFLOP/s (16-bit) or ${PEAK_FP32:-67} (fp32, no TF32); torch fp32 may use TF32."
echo "bench/gpu.sh: $((SECONDS - t0)) s"
