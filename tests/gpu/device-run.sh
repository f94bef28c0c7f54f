#!/usr/bin/env bash
# tests/gpu/device-run.sh: the ONE script to run on the GPU machine.  It
# checks the CUDA backend against the CPU one and benchmarks it, with the
# binaries built here (no rebuild there), in about 8 minutes:
#   1. the machine (nvidia-smi, CPUs, python3/torch, nvcc);
#   2. the shared libraries: of those scripts/gpu-bundle.sh packed into
#      .gpu/libs.tgz, only the ones the device lacks go on LD_LIBRARY_PATH,
#      and cuDNN (and the CUDA runtime, if need be) are taken from PyTorch's
#      pip packages when the system has none; ldd shows the result;
#   3. the CUDA backend loads and opens the GPU (if not, and nvcc is there,
#      build/libaging-cuda.so alone is rebuilt with make cuda, once);
#   4. tests/gpu/run.sh (what make test-gpu runs) with AGING_GPU_REQUIRE=1,
#      and on a failure compute-sanitizer's memcheck of the op tests;
#   5. bench/gpu.sh with the time left (at most 240 s).
# Everything goes to $OUT/gpu-log.txt, the benchmark also to $OUT/bench.txt.
#
# Here, first (builds, packs .gpu/):   bash scripts/gpu-bundle.sh
# Then the device call (the `run` tool of this workplace):
#   command:   bash tests/gpu/device-run.sh
#   carry:     ["bin", "build", ".gpu"]
#   timeout_s: 540
# A rerun of a part alone: DEVICE_RUN_PARTS=tests (or bench) bash tests/gpu/device-run.sh.
# AGING_GPU_DEVICE=cpu runs the same script on a machine without a GPU (the
# benchmark then in its BENCH_QUICK mode), to check the script itself.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
OUT=${OUT:-$root/.gpu/out}
mkdir -p "$OUT"
export AGING_GPU_DEVICE=${AGING_GPU_DEVICE:-cuda}
BUDGET=${DEVICE_RUN_BUDGET_S:-480}
PARTS=${DEVICE_RUN_PARTS:-tests bench}
t0=$SECONDS

section() { printf '\n==== %s (%d s)\n' "$*" $((SECONDS - t0)); }

# Sonames that the files need and the loader cannot find (with the current LD_LIBRARY_PATH).
missing_libs() {
    ldd "$@" 2>/dev/null | awk '$2 == "=>" && $3 == "not" { print $1 }' | sort -u
}

# Make every library of the files loadable: the bundle's copy of what the
# device lacks (linked into $use), cuDNN / the CUDA runtime from pip packages.
resolve_libs() {  # bundle_dir use_dir files...
    local bundle=$1 use=$2 round m d
    shift 2
    mkdir -p "$use"
    case ":${LD_LIBRARY_PATH:-}:" in *":$use:"*) ;; *) export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$use" ;; esac
    for round in 1 2 3 4 5; do
        local todo=()
        mapfile -t todo < <(missing_libs "$@" "$use"/*.so*)
        [ ${#todo[@]} -gt 0 ] || return 0
        echo "round $round: missing ${todo[*]}"
        for m in "${todo[@]}"; do
            if [ -f "$bundle/$m" ]; then
                ln -sf "$bundle/$m" "$use/$m"
            elif d=$(pip_lib_dir "$m"); then
                echo "  $m from $d"
                case ":$LD_LIBRARY_PATH:" in *":$d:"*) ;; *) export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d" ;; esac
            else
                echo "  $m: not in the bundle nor in python3's packages"
            fi
        done
    done
    [ -z "$(missing_libs "$@")" ]
}

# The folder of a library shipped in python3's site-packages (nvidia-cudnn-cu13, ...).
pip_lib_dir() {  # soname
    local f
    f=$(python3 - "$1" 2>/dev/null <<'PY'
import glob, os, site, sys
for sp in site.getsitepackages() + [site.getusersitepackages()]:
    for p in glob.glob(os.path.join(sp, "nvidia", "**", sys.argv[1]), recursive=True):
        print(p)
        sys.exit(0)
sys.exit(1)
PY
) || return 1
    dirname "$f"
}

# The CUDA backend opens the GPU: one small test of test_gpu_ops, which says why not.
cuda_opens() {
    AGING_GPU_REQUIRE=1 timeout 120 build/gpu-tests/test_gpu_ops test_axpy_scale | grep -v 'SKIP not selected'
    return "${PIPESTATUS[0]}"
}

# Rebuild build/libaging-cuda.so here with nvcc, cuDNN's headers and library from pip if need be.
rebuild_cuda() {
    command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { echo "no nvcc: no rebuild"; return 1; }
    local so d inc link=/tmp/aging-cudnn-link
    so=$(ldconfig -p | awk '/libcudnn\.so\.9 / { print $NF; exit }')
    if [ ! -f /usr/local/cuda/include/cudnn.h ] && d=$(pip_lib_dir libcudnn.so.9); then
        inc=$(dirname "$d")/include
        mkdir -p "$link" && ln -sf "$d/libcudnn.so.9" "$link/libcudnn.so"
        export CPATH="$inc${CPATH:+:$CPATH}" LIBRARY_PATH="$link${LIBRARY_PATH:+:$LIBRARY_PATH}"
        echo "cuDNN from $d (headers $inc; system: ${so:-none})"
    fi
    # recompiled, not only relinked: the carried objects were compiled against the cuDNN headers here
    rm -f build/libaging-cuda.so build/cuda/*.o
    make --no-print-directory -j"$(nproc)" CUDA=1 cuda
}

main() {
    section "machine"
    nvidia-smi 2>&1 || echo "(no nvidia-smi)"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv 2>&1 || true
    echo "$(nproc) CPUs, $(free -g | awk '/Mem:/ { print $2 }') GiB; $(uname -r); $(python3 --version 2>&1)"
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' 2>&1 | tail -1
    command -v nvcc >/dev/null && nvcc --version | tail -1
    echo "device under test: $AGING_GPU_DEVICE; budget ${BUDGET} s; LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"

    section "libraries"
    local files=(bin/* build/gpu-tests/* build/tests/test_ops_math build/libaging-cuda.so)
    local bundle=/tmp/aging-bundle
    rm -rf "$bundle" /tmp/aging-libs && mkdir -p "$bundle"
    [ -f .gpu/libs.tgz ] && tar -C "$bundle" -xzf .gpu/libs.tgz
    resolve_libs "$bundle" /tmp/aging-libs "${files[@]}" || echo "WARNING: some libraries are still missing"
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    echo "from the bundle: $(ls /tmp/aging-libs | tr '\n' ' ')"
    ldd bin/cyclegan-step build/libaging-cuda.so 2>&1 | grep -E 'not found|msgpack|zmq|png|jpeg|blas|cjson|microhttpd|zip|cudnn|cudart|:$'
    command -v bats >/dev/null || export PATH="$root/.gpu/bats/bin:$PATH"
    echo "bats: $(command -v bats) ($(bats --version 2>&1))"
    bin/cyclegan-step --version || echo "WARNING: the carried bin/ does not run here"

    if [ "$AGING_GPU_DEVICE" != cpu ]; then
        section "CUDA backend"
        if ! cuda_opens; then
            echo "the CUDA backend does not open the GPU; rebuilding build/libaging-cuda.so"
            rebuild_cuda && resolve_libs "$bundle" /tmp/aging-libs build/libaging-cuda.so
            cuda_opens || echo "WARNING: the CUDA backend still does not open; the device tests will fail"
        fi
    fi

    if [[ " $PARTS " == *" tests "* ]]; then
        section "tests (tests/gpu/run.sh)"
        AGING_GPU_REQUIRE=1 timeout $((BUDGET / 2)) bash tests/gpu/run.sh
        local rc=$? san
        echo "tests/gpu/run.sh: exit $rc"
        # On a failure, memcheck the op tests once: an out-of-bounds access or
        # a bad launch shows its kernel and address (it works on Firecracker
        # machines, not under gVisor).  Only when time is left for the bench.
        san=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
        if [ "$rc" -ne 0 ] && [ "$AGING_GPU_DEVICE" != cpu ] && [ -n "$san" ] \
            && [ $((BUDGET - (SECONDS - t0))) -gt 300 ]; then
            section "compute-sanitizer memcheck of test_gpu_ops (the tests failed)"
            AGING_GPU_REQUIRE=1 timeout 120 "$san" --tool memcheck --print-limit 20 \
                build/gpu-tests/test_gpu_ops 2>&1 | tail -80
        fi
    fi
    [[ " $PARTS " == *" bench "* ]] || { section "done"; return; }

    section "bench (bench/gpu.sh)"
    local b=$((BUDGET - (SECONDS - t0) - 20))
    [ "$b" -gt 240 ] && b=240
    if [ "$b" -lt 60 ]; then
        echo "bench skipped: $b s left"
    else
        if [ "$AGING_GPU_DEVICE" = cpu ]; then export BENCH_QUICK=${BENCH_QUICK:-1}; fi
        BENCH_BUDGET_S=$b timeout $((b + 30)) bash bench/gpu.sh 2>&1 | tee "$OUT/bench.txt"
    fi
    section "done"
}

main 2>&1 | tee "$OUT/gpu-log.txt"
