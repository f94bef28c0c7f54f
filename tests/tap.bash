# Sourced by tests/run.sh and tests/gpu/run.sh: run TAP producers (test
# binaries, bats files), print their output, count "ok"/"not ok" lines, and
# close with "N passed, N failed" (what CI reads).  A producer that exits
# non-zero without a failing TAP line counts as one failure.
passed=0 failed=0
tap_log=$(mktemp)
trap 'rm -f "$tap_log"' EXIT

tap_count() {  # $1: name, $2: exit status; TAP lines are in $tap_log
    local ok nok
    ok=$(grep -c '^ok ' "$tap_log"); nok=$(grep -c '^not ok ' "$tap_log")
    if [ "$2" -ne 0 ] && [ "$nok" -eq 0 ]; then
        echo "not ok - $1 exited with status $2 without a failing test"; nok=1
    fi
    passed=$((passed + ok)); failed=$((failed + nok))
}

# name seconds command...: run it under a time limit, print and count its TAP.
# TAP_STREAM=1 prints the lines as they come (a run cut short keeps them),
# else at the end (a background process a test leaves holding stdout cannot
# hold the runner up).
tap_run() {
    local name=$1 limit=$2 rc
    shift 2
    if [ -n "${TAP_STREAM:-}" ]; then
        timeout "$limit" "$@" 2>&1 | tee "$tap_log"; rc=${PIPESTATUS[0]}
    else
        timeout "$limit" "$@" >"$tap_log" 2>&1; rc=$?
        cat "$tap_log"
    fi
    tap_count "$name" "$rc"
}

# kind seconds files...: tap_run each file that is executable (a test
# binary), under "# kind: name".
tap_run_bins() {
    local kind=$1 limit=$2 t
    shift 2
    for t in "$@"; do
        [ -x "$t" ] || continue
        echo "# $kind: $(basename "$t")"
        tap_run "$(basename "$t")" "$limit" "$t"
    done
}

# seconds files...: tap_run each bats file that exists.
tap_run_bats() {
    local limit=$1 b
    shift
    for b in "$@"; do
        [ -f "$b" ] || continue
        echo "# bats: $(basename "$b")"
        tap_run "$(basename "$b")" "$limit" bats --tap "$b"
    done
}

tap_summary() {  # the closing line; status 1 on any failure
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
