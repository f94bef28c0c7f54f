#!/usr/bin/env bats
# The manual pages keep up with the tools: every option a tool's --help
# lists is in its man page, and every tool has one.

load helpers

@test "docs: each tool's man page lists every option of its --help" {
    root=$(cd "$TESTS_DIR/.." && pwd)
    missing=()
    for tool in "$root"/tools/*.c; do
        t=$(basename "$tool" .c)
        page=$root/docs/man/$t.1
        [ -f "$page" ] || { missing+=("$t: no docs/man/$t.1"); continue; }
        for o in $("$t" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
            grep -qF -- "$(sed 's/-/\\-/g' <<< "$o")" "$page" || missing+=("$t: $o")
        done
    done
    printf '%s\n' "${missing[@]}"
    [ ${#missing[@]} -eq 0 ]
}
