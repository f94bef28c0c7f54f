# Sourced by the pipelines: option parsing shared by train.sh, evaluate.sh
# and infer.sh.  Options use the reference's snake_case names; kebab-case
# aliases work too (--num-train-epochs = --num_train_epochs), as does
# --name=value.  `--config FILE` reads `key = value` lines first; options on
# the command line win.  Each script declares its options in OPTS (name ->
# default) and FLAGS (names without a value) before calling parse_options.
# A script that takes operands (infer.sh's FILEs) sets TAKES_ARGS=1 and
# finds them in ARGS; `--` ends the options.  Elsewhere an operand is refused.

declare -A OPT GIVEN  # GIVEN[k]: set on the command line or in --config
ARGS=()

_known() {  # name: an option of this script?
    local k=${1//-/_}
    [ -n "${OPTS[$k]+x}" ] || [ -n "${FLAGS[$k]+x}" ] && return 0
    echo "$(basename "$0"): unknown option --$1" >&2
    echo "Try '$(basename "$0") --help'." >&2
    exit 2
}

_opt_set() {  # name value
    local k=${1//-/_}
    _known "$1"
    OPT[$k]=$2
    GIVEN[$k]=1
}

_read_config() {
    local file=$1 line k v n=0
    [ -r "$file" ] || { echo "$(basename "$0"): cannot read config $file" >&2; exit 2; }
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        line=${line%%#*}
        [[ $line =~ ^[[:space:]]*$ ]] && continue
        if [[ ! $line =~ ^[[:space:]]*([A-Za-z0-9_-]+)[[:space:]]*=[[:space:]]*(.*[^[:space:]])?[[:space:]]*$ ]]; then
            echo "$(basename "$0"): $file:$n: expected 'key = value'" >&2
            exit 2
        fi
        k=${BASH_REMATCH[1]}
        v=${BASH_REMATCH[2]}
        if [ -n "${FLAGS[${k//-/_}]+x}" ]; then
            case $v in true|1|yes) v=1 ;; *) v= ;; esac
        fi
        _opt_set "$k" "$v"
    done < "$file"
}

parse_options() {
    local k a args=("$@") i
    for k in "${!OPTS[@]}"; do OPT[$k]=${OPTS[$k]}; done
    for k in "${!FLAGS[@]}"; do OPT[$k]=; done
    # the config file first, so the command line wins
    for ((i = 0; i < ${#args[@]}; i++)); do
        case ${args[i]} in
            --config) _read_config "${args[i+1]:?--config needs a file}" ;;
            --config=*) _read_config "${args[i]#--config=}" ;;
        esac
    done
    while [ $# -gt 0 ]; do
        a=$1; shift
        case $a in
            -h|--help) usage; exit 0 ;;
            --config) shift ;;
            --config=*) ;;
            --*=*) k=${a%%=*}; _opt_set "${k#--}" "${a#*=}" ;;
            --) [ -n "${TAKES_ARGS:-}" ] || [ $# -eq 0 ] || _unexpected "$1"; ARGS+=("$@"); break ;;
            --*)
                k=${a#--}
                _known "$k" # before "needs a value": --bogus at the end is unknown, not short of a value
                if [ -n "${FLAGS[${k//-/_}]+x}" ]; then
                    _opt_set "$k" 1
                else
                    [ $# -gt 0 ] || { echo "$(basename "$0"): --$k needs a value" >&2; exit 2; }
                    _opt_set "$k" "$1"; shift
                fi ;;
            *) [ -n "${TAKES_ARGS:-}" ] || _unexpected "$a"; ARGS+=("$a") ;;
        esac
    done
}

_unexpected() {
    echo "$(basename "$0"): unexpected argument '$1'" >&2
    echo "Try '$(basename "$0") --help'." >&2
    exit 2
}

# Write the effective configuration as `key = value` lines (reusable with
# --config), less the names in $1 (space-separated: per-invocation flags).
write_config() {
    local k
    for k in $(printf '%s\n' "${!OPT[@]}" | sort); do
        [[ " ${1:-} " == *" $k "* ]] && continue
        printf '%s = %s\n' "$k" "${OPT[$k]}"
    done
}

# Same value? Numbers compare as numbers (2e-4 = 0.0002), the rest as text.
same_value() {  # a b
    [ "$1" = "$2" ] && return 0
    local num='^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$'
    [[ $1 =~ $num && $2 =~ $num ]] && awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 == b + 0) }'
}

# Take a run's saved configuration FILE: options not given now get the saved
# value; options given now must agree with it unless named in $2 (names that
# may change between invocations).  Every conflict is listed, then exit 2.
merge_saved_config() {  # file changeable
    local file=$1 line k v bad=()
    while IFS= read -r line || [ -n "$line" ]; do
        [[ $line =~ ^([A-Za-z0-9_]+)\ =\ ?(.*)$ ]] || continue
        k=${BASH_REMATCH[1]} v=${BASH_REMATCH[2]}
        [ -n "${OPTS[$k]+x}" ] || [ -n "${FLAGS[$k]+x}" ] || continue # an option of another version
        [[ " $2 " == *" $k "* ]] && { [ -n "${GIVEN[$k]:-}" ] || OPT[$k]=$v; continue; }
        if [ -z "${GIVEN[$k]:-}" ]; then
            OPT[$k]=$v
        elif ! same_value "${OPT[$k]}" "$v"; then
            bad+=("--$k ${OPT[$k]:-(off)} (the run has ${v:-(off)})")
        fi
    done < "$file"
    [ ${#bad[@]} -eq 0 ] && return 0
    echo "$(basename "$0"): --resume: options that differ from the run's ($file):" >&2
    printf '  %s\n' "${bad[@]}" >&2
    echo "  drop them to continue the run as it was, or start a new run (--output_dir, or --overwrite)" >&2
    exit 2
}

need_int() {  # name
    [[ ${OPT[$1]} =~ ^[0-9]+$ ]] || { echo "$(basename "$0"): --$1 must be a whole number, got '${OPT[$1]}'" >&2; exit 2; }
}
