# shellcheck shell=bash disable=SC2154  # $precs and $threads: set by the sourcing script
# bench/common.sh: sourced by the benchmarks that put our figures next to
# PyTorch's: running the reference model (the shared
# torch_cyclegan_bench.py, Debian's torch), keeping the best of several
# rounds, and the table they print.  The machine is shared, so every script
# alternates our runs and PyTorch's in each round and keeps each one's best:
# load that lands on a round slows both sides, and the best round of each
# is the least disturbed one.

TORCH_PY=${TORCH_PY:-/usr/bin/python3}
TORCH_BENCH=${TORCH_BENCH:-/work/shared/bench/torch_cyclegan_bench.py}
bench_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_DIR=${BENCH_DIR:-$bench_here/../build/bench}

# On a loaded machine (load average above the core count) libgomp's default
# spin-waiting at each of the thousands of barriers of a step spends a
# thread's time slices waiting for one that is descheduled: measured on the
# shared 2-core VM, a 32x32 training step took 19.5 s on 2 threads against
# 1.0 s on 1 (PyTorch, also on libgomp, alike) and 1.1 s with
# OMP_WAIT_POLICY=passive.  There both sides run passive and the output says
# so; an OMP_WAIT_POLICY set by the caller is kept.
bench_load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
if [ -z "${OMP_WAIT_POLICY:-}" ] && awk -v l="$bench_load" -v n="$(nproc)" 'BEGIN { exit !(l > n) }'; then
    export OMP_WAIT_POLICY=passive
    echo "openmp: OMP_WAIT_POLICY=passive, ours and torch alike (load average $bench_load on $(nproc) cores)"
fi

# The thread counts to compare: 1 and every core (just 1 on a 1-core box).
bench_threads() {
    local n
    n=$(nproc)
    if [ "$n" -gt 1 ]; then echo "1 $n"; else echo 1; fi
}

have_torch() {
    [ -f "$TORCH_BENCH" ] && "$TORCH_PY" -c 'import torch' 2>/dev/null
}

# torch_ms THREADS PRECISION [torch_cyclegan_bench.py options...]: the
# reference script's ms per step with torch.set_num_threads(THREADS);
# PRECISION bf16 is torch.autocast('cpu', dtype=torch.bfloat16).  Prints
# nothing when it fails.
torch_ms() {
    local nt=$1 prec=$2
    shift 2
    OMP_NUM_THREADS=$nt "$TORCH_PY" -c "import sys, torch, runpy; torch.set_num_threads($nt); \
sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')" \
        "$TORCH_BENCH" --device cpu --precision "$prec" "$@" 2>/dev/null |
        sed -n 's/.*"ms_per_step": \([0-9.]*\).*/\1/p' | tail -1
}

# field NAME LINE: the value after NAME in "name value name value ..."
field() {
    awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' <<<"$2"
}

# keep_min VAR VALUE: VAR = VALUE when VAR is empty or VALUE is smaller.
keep_min() {
    local cur=${!1:-}
    [ -n "$2" ] || return 0
    if [ -z "$cur" ] || awk -v a="$2" -v b="$cur" 'BEGIN { exit !(a < b) }'; then
        printf -v "$1" '%s' "$2"
    fi
}

# div A B [FORMAT]: A / B, or "-" when either is missing.
div() {
    if [ -z "$1" ] || [ -z "$2" ] || [ "$1" = - ] || [ "$2" = - ]; then
        echo -
    else
        awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { printf f, a / b }'
    fi
}

# The peak GFLOP/s of one core: peak_core fp32|bf16
peak_core() {
    local p
    p=$(bash "$bench_here/cpu.sh" --peak)
    if [ "$1" = fp32 ]; then echo "${p% *}"; else echo "${p#* }"; fi
}

table_header() {
    printf '%-30s %-4s %3s %9s %10s %10s %9s %9s %8s %6s\n' figure prec thr "ours ms" "torch fp32" \
        "torch bf16" "/fp32" "/bf16" "GFLOP/s" "%peak"
}

# table_row FIGURE PREC THREADS OURS_MS TORCH_FP32_MS TORCH_BF16_MS GFLOP:
# one row; the ratios are our time over PyTorch's, %peak is our GFLOP/s
# against THREADS cores' peak in PREC (bench/cpu.sh).
table_row() {
    local fig=$1 prec=$2 nt=$3 ours=${4:--} tf=${5:--} tb=${6:--} gflop=$7 gfs peak
    gfs=$(div "$gflop" "$(div "$ours" 1000 %.6f)" %.1f)
    peak=$(awk -v p="$(peak_core "$prec")" -v t="$nt" 'BEGIN { print p * t }')
    printf '%-30s %-4s %3s %9s %10s %10s %9s %9s %8s %6s\n' "$fig" "$prec" "$nt" "$ours" "$tf" "$tb" \
        "$(div "$ours" "$tf")" "$(div "$ours" "$tb")" "$gfs" "$(div "$gfs" "$(div "$peak" 100 %.4f)" %.0f)"
}

# compare ROUNDS: for each round, thread count in $threads and precision in
# $precs (at 1 thread only those also in $precs1, when that is set), runs `ours_run T P` (the caller's function; prints our
# "c_ms X ... gflop Y" line) and, where torch is there, `torch_run T P`
# (prints ms), keeping the best of each in ours_P_T / torch_P_T and our
# GFLOP in $gflop.  With $BASE_BIN, `base_run T` too for fp32 (base_T).
compare() {
    local r t p o tm torch_ok=
    have_torch && torch_ok=1
    for r in $(seq "$1"); do
        for t in $threads; do
            for p in $precs; do
                [ "$t" != 1 ] || [ -z "${precs1+x}" ] || [[ " $precs1 " == *" $p "* ]] || continue
                if [ -n "${BASE_BIN:-}" ] && [ "$p" = fp32 ]; then
                    o=$(base_run "$t")
                    keep_min "base_$t" "$(field c_ms "$o")"
                fi
                o=$(ours_run "$t" "$p")
                keep_min "ours_${p}_$t" "$(field c_ms "$o")"
                gflop=$(field gflop "$o")
                tm=
                [ -z "$torch_ok" ] || tm=$(torch_run "$t" "$p")
                keep_min "torch_${p}_$t" "$tm"
                echo "# round $r, $t threads, $p: ours $(field c_ms "$o") ms, torch ${tm:--} ms" >&2
            done
        done
    done
}

# report FIGURE: the table rows of what compare kept, then the speed-up from
# 1 thread to the most (time at 1 thread over time at N).
report() {
    local fig=$1 p t o tf tb a b c d line n
    table_header
    for p in $precs; do
        for t in $threads; do
            o=ours_${p}_$t tf=torch_fp32_$t tb=torch_bf16_$t
            [ -n "${!o:-}" ] || continue
            table_row "$fig" "$p" "$t" "${!o:-}" "${!tf:-}" "${!tb:-}" "$gflop"
        done
    done
    if [ -n "${BASE_BIN:-}" ]; then
        for t in $threads; do
            o=base_$t tf=torch_fp32_$t tb=torch_bf16_$t
            table_row "$fig (base)" fp32 "$t" "${!o:-}" "${!tf:-}" "${!tb:-}" "$gflop"
        done
    fi
    set -- $threads
    [ $# -gt 1 ] || return 0
    n=${!#}
    line="$fig, threads 1→$n speed-up:"
    for p in $precs; do
        a=ours_${p}_1 b=ours_${p}_$n c=torch_${p}_1 d=torch_${p}_$n
        [ -n "${!a:-}" ] || continue
        line="$line ours $p x$(div "${!a:-}" "${!b:-}"), torch $p x$(div "${!c:-}" "${!d:-}");"
    done
    echo "${line%;}"
}
