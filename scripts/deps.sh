#!/usr/bin/env bash
# Install the Debian packages aging-cyclegan needs; only what is missing, so
# it is cheap to run again.
#   deps.sh            everything: build, run, test, lint and benchmark, and
#                      the evaluation-only judge's node packages (eval/judge:
#                      `npm ci`, the versions its package-lock.json pins)
#   deps.sh --runtime  only what building and running the tools needs
#                      (make demo, make install): no PyTorch, no browser, no node
# The runtime list must cover the Makefile's pkg-config names (PKGS) and its
# plain -l libraries (oneDNN has no .pc file); a test checks that they agree.
set -euo pipefail
runtime=(build-essential pkg-config libmsgpack-dev libzmq3-dev libpng-dev libjpeg62-turbo-dev
         libopenblas-dev liblapacke-dev libcjson-dev libmicrohttpd-dev libzip-dev libdnnl-dev
         libdlib-dev libdlib-data libopenmpi-dev openmpi-bin)
testing=(bats bats-assert bats-support cppcheck clang-tidy clang-format clang libclang-rt-dev libomp-dev
         python3-torch python3-torchvision python3-msgpack python3-numpy python3-scipy python3-pil
         time curl gnuplot-nox chromium chromium-driver python3-selenium linux-perf nodejs)
case ${1:-} in
    --runtime) pkgs=("${runtime[@]}") ;;
    --list-runtime) printf '%s\n' "${runtime[@]}"; exit 0 ;;
    "") pkgs=("${runtime[@]}" "${testing[@]}") ;;
    *) echo "deps.sh: unknown option '$1' (--runtime, --list-runtime)" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# npm: Debian's package, unless the nodejs installed brings its own (NodeSource's)
[ "${1:-}" = --runtime ] || command -v npm > /dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
[ "${1:-}" = --runtime ] && exit 0
judge=$(cd "$(dirname "$0")/../eval/judge" && pwd)
if [ ! -d "$judge/node_modules" ]; then
  echo "deps: installing the judge's node packages (npm ci --prefix $judge)" >&2
  npm ci --prefix "$judge" --ignore-scripts --no-audit --no-fund
fi
