#!/usr/bin/env bash
# Run every unit test binary and every bats file, print their TAP output, and
# close with "N passed, N failed" (what CI reads).  Exit 1 on any failure.
# BIN_DIR and UNIT_DIR say which build to test (make test / make asan set them).
set -u
here=$(cd "$(dirname "$0")" && pwd)
export BIN_DIR=${BIN_DIR:-$here/../bin} UNIT_DIR=${UNIT_DIR:-$here/../build/tests}
export PATH="$BIN_DIR:$PATH" TESTS_DIR=$here
passed=0 failed=0
log=$(mktemp); trap 'rm -f "$log"' EXIT

count() {  # $1: name, $2: exit status; TAP lines are in $log
    local ok nok
    ok=$(grep -c '^ok ' "$log"); nok=$(grep -c '^not ok ' "$log")
    if [ "$2" -ne 0 ] && [ "$nok" -eq 0 ]; then
        echo "not ok - $1 exited with status $2 without a failing test"; nok=1
    fi
    passed=$((passed + ok)); failed=$((failed + nok))
}

for t in "$UNIT_DIR"/test_*; do
    [ -x "$t" ] || continue
    echo "# unit: $(basename "$t")"
    timeout 600 "$t" >"$log" 2>&1; rc=$?
    cat "$log"; count "$(basename "$t")" $rc
done
for b in "$here"/*.bats; do
    [ -f "$b" ] || continue
    echo "# bats: $(basename "$b")"
    timeout 900 bats --tap "$b" >"$log" 2>&1; rc=$?
    cat "$log"; count "$(basename "$b")" $rc
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
