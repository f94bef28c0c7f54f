# Sourced by the pipelines: where the tools and the UTKFace images are.
# UTKFACE_DIR wins; otherwise data/utkface_aligned_cropped/UTKFace or
# data/UTKFace under the repository.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$ROOT/bin:$PATH"
# The pipelines run several tools side by side on few cores (utk-split, aug
# workers, the trainer): OpenMP threads that spin at barriers would steal the
# cores the others need, so they sleep instead unless told otherwise.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
OUTPUTS=${OUTPUTS_DIR:-$ROOT/outputs}

find_utkface() {
    local d
    for d in "${UTKFACE_DIR:-}" "$ROOT/data/utkface_aligned_cropped/UTKFace" "$ROOT/data/UTKFace"; do
        if [ -n "$d" ] && [ -d "$d" ] && compgen -G "$d/*.jpg" >/dev/null; then
            echo "$d"
            return 0
        fi
    done
    cat >&2 <<MSG
$(basename "$0"): no UTKFace images found.
  Get the "Aligned & Cropped Faces" set (UTKFace.tar.gz) from the UTKFace
  project page (https://susanqq.github.io/UTKFace/), unpack it so that the
  files sit in data/utkface_aligned_cropped/UTKFace/, or point UTKFACE_DIR
  at the folder. See data/README.md.
MSG
    return 1
}
