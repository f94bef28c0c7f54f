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

# The kind of value option $1 holds, from the script's optional OPT_TYPE
# (name -> int, number or text; flags are 1 or empty): the check of a saved
# configuration, whose values come from a file anyone may have edited.
_saved_value_ok() {  # name value
    [[ $2 != *[[:cntrl:]]* ]] || return 1
    if [ -n "${FLAGS[$1]+x}" ]; then
        [[ $2 == "" || $2 == 1 ]]
        return
    fi
    case ${OPT_TYPE[$1]:-text} in
        int) [[ $2 =~ ^[0-9]*$ ]] ;;
        number) [[ $2 =~ ^([-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?)?$ ]] ;;
        *) true ;;
    esac
}

# Take a run's saved configuration FILE (write_config's lines), parsed
# strictly: a line that is not `key = value`, a key that is not an option, a
# control byte or a value of the wrong kind stops with the line and key
# named.  Options not given now get the saved value; options given now must
# agree with it unless named in $2 (names that may change between
# invocations).  The names in $3 are never taken from the file: they belong
# to the invocation (the output folder is where the file lies; the S3 and EC2
# hooks run commands, so a file in a run folder must not switch them on).
# Every conflict is listed, then exit 2.
merge_saved_config() {  # file changeable [not-taken]
    local file=$1 line k v bad=() n=0 me
    local changeable=" ${2//[[:space:]]/ } " local_=" ${3//[[:space:]]/ } "
    me=$(basename "$0")
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        if [[ ! $line =~ ^([a-z0-9_]+)\ =\ ?(.*)$ ]]; then
            echo "$me: --resume: $file:$n: expected 'key = value'" >&2
            exit 2
        fi
        k=${BASH_REMATCH[1]} v=${BASH_REMATCH[2]}
        if [ -z "${OPTS[$k]+x}" ] && [ -z "${FLAGS[$k]+x}" ]; then
            echo "$me: --resume: $file:$n: unknown key '$k'" >&2
            exit 2
        fi
        if ! _saved_value_ok "$k" "$v"; then
            local kind=${OPT_TYPE[$k]:-"text (no control bytes)"}
            [ -z "${FLAGS[$k]+x}" ] || kind="flag (1 or nothing)"
            echo "$me: --resume: $file:$n: key '$k': $(printf %q "$v") is not a valid $kind" >&2
            exit 2
        fi
        [[ $local_ == *" $k "* ]] && continue
        [[ $changeable == *" $k "* ]] && { [ -n "${GIVEN[$k]:-}" ] || OPT[$k]=$v; continue; }
        if [ -z "${GIVEN[$k]:-}" ]; then
            OPT[$k]=$v
        elif ! same_value "${OPT[$k]}" "$v"; then
            bad+=("--$k ${OPT[$k]:-(off)} (the run has ${v:-(off)})")
        fi
    done < "$file"
    [ ${#bad[@]} -eq 0 ] && return 0
    echo "$me: --resume: options that differ from the run's ($file):" >&2
    printf '  %s\n' "${bad[@]}" >&2
    echo "  drop them to continue the run as it was, or start a new run (--output_dir, or --overwrite)" >&2
    exit 2
}

need_int() {  # name [positive]
    local re='^[0-9]+$'
    [ -z "${2:-}" ] || re='^[0-9]*[1-9][0-9]*$'
    [[ ${OPT[$1]} =~ $re ]] || {
        echo "$(basename "$0"): --$1 must be a whole number${2:+ of at least 1}, got '${OPT[$1]}'" >&2; exit 2; }
}
