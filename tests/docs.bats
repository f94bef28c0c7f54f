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

# The documents a user reads first: README.md, docs/*.md, models/README.md.
user_docs() {
    echo "$root/README.md" "$root"/docs/*.md "$root/models/README.md"
}

@test "docs: every relative link and every cited docs/, pipelines/, tools/, scripts/ or bench/ path exists" {
    root=$(cd "$TESTS_DIR/.." && pwd)
    missing=()
    for doc in $(user_docs); do
        d=$(dirname "$doc")
        # [text](target): a relative target is a file beside the document (#anchors dropped)
        for target in $(grep -o '\](\([^)]*\))' "$doc" | sed 's/^](//; s/)$//; s/#.*//'); do
            case $target in ''|http://*|https://*|mailto:*) continue ;; esac
            [ -e "$d/$target" ] || missing+=("${doc#$root/}: link $target")
        done
        # paths of the tree cited in the text (globs allowed: tests/expected/astronaut_*.png)
        for p in $(grep -oE '(^|[^A-Za-z0-9_./-])(docs|pipelines|tools|scripts|bench)/[A-Za-z0-9_.*/-]*[A-Za-z0-9_*]' "$doc" \
                   | sed -E 's/^[^a-z]//' | sort -u); do
            compgen -G "$root/$p" > /dev/null || missing+=("${doc#$root/}: $p")
        done
        # a cited document that is not in the repository
        grep -qE '(^|[^/A-Za-z])DESIGN\.md' "$doc" && [ ! -e "$root/DESIGN.md" ] && missing+=("${doc#$root/}: DESIGN.md")
    done
    printf '%s\n' "${missing[@]}"
    [ ${#missing[@]} -eq 0 ]
}

@test "docs: shipped files carry no path of the machine that made them (/work/, /home/, /var/tmp/, /tmp/...)" {
    root=$(cd "$TESTS_DIR/.." && pwd)
    # ipc:///tmp/... is an endpoint example, not a machine's file
    run bash -c "grep -lraE '(^|[^/:])/(work|home|root|var/tmp|tmp|Users)/[A-Za-z0-9_]' $(user_docs) '$root'/models/* '$root'/data/README.md"
    echo "$output"
    [ -z "$output" ]
    run ckpt meta "$root/models/utkface-128.safetensors" source
    assert_success
    refute_output --partial "/"
}
