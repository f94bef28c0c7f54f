#!/usr/bin/env bash
# scripts/gpu-bundle.sh: get this checkout ready for one run on the GPU
# machine (tests/gpu/device-run.sh), which has nvcc, CUDA, PyTorch and
# cuDNN (inside PyTorch's pip packages) but maybe none of the libraries the
# tools link (msgpack, ZeroMQ, libpng, libjpeg, OpenBLAS, cJSON,
# libmicrohttpd, libzip), no bats and no network.  Run it here, then make
# the device call with the carry list it prints.  It:
#   - builds everything (make -j2 all: tools, tests, the CUDA .so with nvcc);
#   - packs into .gpu/libs.tgz every shared library the binaries load (ldd of
#     bin/*, build/gpu-tests/*, build/tests/test_ops_math and
#     build/libaging-cuda.so), except glibc's, the compiler runtime's and
#     CUDA's/cuDNN's: device-run.sh puts on the library path only those the
#     device lacks, so nothing there is shadowed;
#   - copies bats (relocatable bash scripts) into .gpu/bats and the PyTorch
#     reference benchmark into .gpu/torch_cyclegan_bench.py.
# .gpu/ is git-ignored; the bundle stays well under the device call's 64 MiB.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
make --no-print-directory -j2 all
[ -f build/libaging-cuda.so ] || echo "gpu-bundle: warning: no build/libaging-cuda.so (no nvcc here?);" \
    "device-run.sh builds it there with make cuda" >&2

rm -rf .gpu
mkdir -p .gpu/libs .gpu/bats/bin
bins=(bin/* build/gpu-tests/*)
for f in build/tests/test_ops_math build/libaging-cuda.so; do [ -f "$f" ] && bins+=("$f"); done
# glibc, the compiler runtime, the loader, the GPU driver, CUDA and cuDNN stay the device's own
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libutil\.so|libresolv\.so'
skip+='|libgcc_s\.so|libstdc\+\+\.so|libcuda\.so|libcudart|libcudnn|libcublas|libnvidia|libnvrtc)'
ldd "${bins[@]}" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u \
    | while read -r name path; do
        [[ $name =~ $skip ]] || cp -L "$path" ".gpu/libs/$name"
    done
tar -C .gpu/libs -czf .gpu/libs.tgz .
echo "gpu-bundle: $(find .gpu/libs -type f | wc -l) libraries, $(du -sh .gpu/libs | cut -f1) ($(du -sh .gpu/libs.tgz | cut -f1) packed)"
rm -rf .gpu/libs

# bats: its own folder layout (bin/bats finds libexec/bats-core and lib/bats-core beside it)
bats_root=$(dirname "$(dirname "$(readlink -f "$(command -v bats)")")")
mkdir -p .gpu/bats/lib .gpu/bats/libexec
cp "$bats_root/bin/bats" .gpu/bats/bin/
cp -r "$bats_root/lib/bats-core" .gpu/bats/lib/
cp -r "$bats_root/libexec/bats-core" .gpu/bats/libexec/

cp "${TORCH_BENCH:-/work/shared/bench/torch_cyclegan_bench.py}" .gpu/torch_cyclegan_bench.py

total=$(du -sbc bin build .gpu | tail -1 | cut -f1)
tree=$(git ls-files -co --exclude-standard -z | xargs -0 du -bc 2>/dev/null | awk '$2 == "total" { s += $1 } END { print s + 0 }')
echo "gpu-bundle: carried paths $((total / 1048576)) MiB + working tree $((tree / 1048576)) MiB (limit 64 MiB)"
echo 'gpu-bundle: carry ["bin", "build", ".gpu"]; command: bash tests/gpu/device-run.sh'
