# Sourced by the pipelines: where the tools and the UTKFace images are.
# --data_dir or UTKFACE_DIR wins; otherwise data/utkface_aligned_cropped/UTKFace
# or data/UTKFace under the repository.
# ROOT is the source tree (tools in ROOT/bin), or PREFIX/share/aging-cyclegan
# after `make install` (tools in PREFIX/bin; outputs then go under the
# working directory).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
USER_PATH=$PATH # as the user has it, for hints that name a tool (tool_name)
if [ -f "$ROOT/Makefile" ]; then
    export PATH="$ROOT/bin:$PATH"
    DEFAULT_OUTPUTS=$ROOT/outputs
else
    [ -d "$ROOT/../../bin" ] && PATH="$(cd "$ROOT/../../bin" && pwd):$PATH" && export PATH
    DEFAULT_OUTPUTS=$PWD/outputs
fi
# The pipelines run several tools side by side on few cores (utk-split, aug
# workers, the trainer): OpenMP threads that spin at barriers would steal the
# cores the others need, so they sleep instead unless told otherwise.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
OUTPUTS=${OUTPUTS_DIR:-$DEFAULT_OUTPUTS}

# The UTKFace folder on stdout.  A folder given by --data_dir ($1) or by
# UTKFACE_DIR must hold the images: it is never passed over for the defaults,
# so a mistyped one is named as such.
find_utkface() {  # [--data_dir value]
    local d what
    if [ -n "${1:-}" ]; then d=$1 what="--data_dir $1"
    elif [ -n "${UTKFACE_DIR:-}" ]; then d=$UTKFACE_DIR what="UTKFACE_DIR=$UTKFACE_DIR"
    fi
    if [ -n "${what:-}" ]; then
        if [ -d "$d" ] && compgen -G "$d/*.jpg" >/dev/null; then echo "$d"; return 0; fi
        if [ ! -e "$d" ]; then what+=": no such folder"
        elif [ ! -d "$d" ]; then what+=": not a folder"
        else what+=": no UTKFace images (*.jpg) in it"
        fi
    else
        for d in "$ROOT/data/utkface_aligned_cropped/UTKFace" "$ROOT/data/UTKFace"; do
            if [ -d "$d" ] && compgen -G "$d/*.jpg" >/dev/null; then echo "$d"; return 0; fi
        done
        what="no UTKFace images (*.jpg) in $ROOT/data/utkface_aligned_cropped/UTKFace or $ROOT/data/UTKFace"
    fi
    cat >&2 <<MSG
$(basename "$0"): $what.
  Get the "Aligned & Cropped Faces" set (UTKFace.tar.gz) from the UTKFace
  project page (https://susanqq.github.io/UTKFace/) and unpack it; then give
  its folder of *.jpg files with --data_dir DIR, or set UTKFACE_DIR=DIR, or
  put the files in data/utkface_aligned_cropped/UTKFace/. See data/README.md.
MSG
    return 1
}

# How the user can type tool $1 that the pipelines run: its bare name when
# their own PATH finds this one, else its full path.
tool_name() {
    local mine
    mine=$(command -v "$1") || { echo "$1"; return; }
    [ "$(PATH=$USER_PATH command -v "$1")" = "$mine" ] && echo "$1" || echo "$mine"
}

# A number of a checkpoint's training configuration, from CONFIG as
# `ckpt meta --json CKPT config` prints it, or nothing.  That is one JSON
# string, so a hostile value can span no lines, and only a key of the config
# object itself matches: after { or , its quotes are \", where a string's
# own quotes would be \\\".
config_num() {  # config key
    sed -n 's/.*[{,]\\"'"$2"'\\":\([-+.0-9eE]*\)[,}].*/\1/p' <<< "$1"
}

# The image size a checkpoint was trained at (its config), or nothing.
ckpt_size() {  # ckpt
    config_num "$(ckpt meta --json "$1" config 2>/dev/null)" size
}

# The side its faces were resized to before the centre crop (aug --resize),
# or nothing when its config does not say.
ckpt_resize() {  # ckpt
    ckpt meta "$1" config 2>/dev/null | sed -n 's/.*"resize":\([0-9]*\).*/\1/p'
}

# FID of G(young) on a split against the split's real old faces; the real
# side's statistics are cached in STATS.  Uses data, seed, size, fidw and
# the array dev of the calling script, and its function split_limit SPLIT
# (the utk-split --limit arguments for that split).
fid_of() {  # ckpt split stats -> the FID on stdout
    local stats=$3
    if [ ! -f "$stats" ]; then
        utk-split "$data" --split "$2" --seed "$seed" -q $(split_limit "$2") | aug --eval --size "$size" \
            | fid --weights "$fidw" --domain old --save-stats "$stats" "${dev[@]}" > /dev/null
    fi
    utk-split "$data" --split "$2" --seed "$seed" -q $(split_limit "$2") | aug --eval --size "$size" \
        | translate --y2o --stream --only --ckpt "$1" --size "$size" "${dev[@]}" \
        | fid --weights "$fidw" --domain old --ref "$stats" --json "${dev[@]}" | sed -n 's/.*"fid": \([^,}]*\).*/\1/p'
}

# Copy a one-line JSON record's loss_* and fid_val values under the
# reference's names ("test/loss_DX", "test/fid_val", ...).
with_reference_keys() {  # prefix < json > json
    awk -v p="$1" '{
        extra = ""; s = $0
        while (match(s, /"(loss_[A-Za-z_]+|fid_val)": [^,}]+/)) {
            kv = substr(s, RSTART, RLENGTH); s = substr(s, RSTART + RLENGTH)
            extra = extra ", \"" p "/" substr(kv, 2)
        }
        sub(/}[[:space:]]*$/, extra "}"); print }'
}

# Write stdin to FILE the way the tools write their outputs (lib/base/fileout.h):
# a regular file, or a name that does not exist yet, is replaced atomically
# through FILE.tmp.PID.XXXXXX (a link is followed, the file it names
# replaced; a new file follows the umask, a replaced one keeps its mode);
# anything else (a FIFO, /dev/null, /dev/stdout, /dev/fd/N) is written in
# place, appending, so an open descriptor's offset is kept.
write_output() {  # FILE < data
    local out=$1 target tmp
    case $out in
        /dev/* | /proc/*) cat >> "$out"; return ;;
    esac
    target=$(readlink -m -- "$out")
    if [ -e "$target" ] && [ ! -f "$target" ]; then
        cat >> "$out"
        return
    fi
    tmp=$(mktemp "$target.tmp.$$.XXXXXX") || return
    if [ -f "$target" ]; then
        chmod --reference="$target" "$tmp"
    else
        chmod "$(printf %o $((0666 & ~0$(umask))))" "$tmp"
    fi && cat > "$tmp" && mv -f "$tmp" "$target" && return 0
    rm -f "$tmp"
    return 1
}
