#!/usr/bin/env bats
# The demo's closing hints name what the user has: the translate they can
# type and a model card that exists, in the source tree and after
# `make install` (where there is no bin/ or models/ under the working folder).

load helpers

setup() {
    common_setup
    ROOT=$(cd "$TESTS_DIR/.." && pwd)
}
teardown() { common_teardown; }

# Every command and file the hint lines of the demo's output name must exist.
check_hints() {  # PATH the user has
    local hints tool card
    hints=$(grep -E '^(Your own face|Any photo):' <<< "$output")
    [ "$(wc -l <<< "$hints")" -eq 2 ] || { echo "no hints in: $output"; return 1; }
    for tool in $(sed -E 's/^[^:]*: +([^ ]+).*/\1/' <<< "$hints"); do
        [[ $tool == */* ]] && [ -x "$tool" ] && continue
        PATH=$1 command -v "$tool" > /dev/null || { echo "hint names $tool, which this user cannot run"; return 1; }
    done
    card=$(grep -o 'see [^)]*README.md' <<< "$hints" | sed 's/^see //')
    [ -f "$card" ] || { echo "hint names $card, which does not exist"; return 1; }
}

@test "demo: after make install, the hints name the installed translate and model card" {
    run make -C "$ROOT" install PREFIX="$TMP/inst" BIN="$BIN_DIR" BUILD="$(dirname "$UNIT_DIR")" CUDA=0
    assert_success
    mkdir "$TMP/work" && cd "$TMP/work"
    # not on the user's PATH: the full path; on it: the bare name
    PATH=/usr/bin:/bin UTKFACE_DIR= run bash "$TMP/inst/share/aging-cyclegan/pipelines/demo.sh"
    assert_success
    assert_output --partial "$TMP/inst/bin/translate --y2o"
    check_hints /usr/bin:/bin
    PATH=$TMP/inst/bin:/usr/bin:/bin UTKFACE_DIR= run bash "$TMP/inst/share/aging-cyclegan/pipelines/demo.sh"
    assert_success
    assert_output --regexp "Your own face: +translate --y2o"
    check_hints "$TMP/inst/bin:/usr/bin:/bin"
}
