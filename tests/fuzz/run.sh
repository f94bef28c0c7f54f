#!/usr/bin/env bash
# Run every libFuzzer harness that `make fuzz` built, one after another, for
# SECONDS each, starting from its seed corpus (corpus/NAME) and its committed
# crashes (regress/NAME).  Prints one line per harness with executions,
# executions per second and coverage; exits 1 if any harness found a crash,
# a leak, a timeout or an out-of-memory, naming the input it left.
#   run.sh BUILD_DIR SECONDS [NAME...]      (BUILD_DIR: build-fuzz)
# Extra libFuzzer flags can be given in FUZZ_FLAGS (e.g. -runs=1000000).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run.sh BUILD_DIR SECONDS [NAME...]}
secs=${2:?usage: run.sh BUILD_DIR SECONDS [NAME...]}
shift 2
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for src in "$here"/fuzz_*.c; do
        n=${src##*/fuzz_}
        names+=("${n%.c}")
    done
fi

# The largest input worth trying, by format: a few records, a small
# checkpoint, a small image.  Seeds must fit (longer ones are cut).
max_len() {
    case $1 in
        image | pth | stream) echo 16384 ;;
        *) echo 8192 ;;
    esac
}

mkdir -p "$build/corpus" "$build/crashes" "$build/logs"
failed=0
for name in "${names[@]}"; do
    bin=$build/fuzz/fuzz_$name
    log=$build/logs/$name.log
    [ -x "$bin" ] || { echo "fuzz: $bin is not built (make fuzz)" >&2; failed=1; continue; }
    # The first folder collects what libFuzzer finds; the seeds stay as committed.
    dirs=("$build/corpus/$name" "$here/corpus/$name")
    [ -d "$here/regress/$name" ] && dirs+=("$here/regress/$name")
    dict=()
    [ -f "$here/$name.dict" ] && dict=(-dict="$here/$name.dict")
    mkdir -p "$build/corpus/$name"
    # shellcheck disable=SC2086 # FUZZ_FLAGS is a list of flags
    "$bin" -max_total_time="$secs" -max_len="$(max_len "$name")" -timeout=30 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$build/crashes/$name-" "${dict[@]}" ${FUZZ_FLAGS:-} \
        "${dirs[@]}" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        echo "fuzz: $name: ${runs:-?} runs, ${rate:-?} exec/s, $cov: ok"
    else
        failed=1
        input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        echo "fuzz: $name FAILED (exit $rc) after ${runs:-?} runs; input: ${input:-none}; log: $log" >&2
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|.*invariant broken|.*without a message)' "$log" |
            head -5 >&2
        [ -n "$input" ] && echo "fuzz: reproduce with $bin $input; see tests/fuzz/README.md" >&2
    fi
done
exit $failed
