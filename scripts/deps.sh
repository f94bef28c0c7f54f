#!/usr/bin/env bash
# Install every Debian package aging-cyclegan needs to build, test and
# benchmark. Installs only what is missing, so it is cheap to run again.
set -euo pipefail
pkgs=(build-essential pkg-config libmsgpack-dev libzmq3-dev libpng-dev libjpeg62-turbo-dev
      libopenblas-dev liblapacke-dev libcjson-dev libmicrohttpd-dev libzip-dev bats bats-assert bats-support cppcheck clang-tidy clang-format
      python3-torch python3-torchvision python3-msgpack python3-numpy python3-scipy python3-pil
      curl gnuplot-nox chromium chromium-driver python3-selenium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
