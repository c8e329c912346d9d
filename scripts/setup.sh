#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks (Debian packages only) and builds pipecast in
# ./build with the `default` preset, which also builds every CUDA target when nvcc and NCCL are
# present (/usr/local/cuda). Safe to run again: it installs nothing already present and rebuilds
# only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake ninja-build g++ pkg-config libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
          libfmt-dev libgtest-dev libbenchmark-dev libeigen3-dev zlib1g-dev
          dataset-fashion-mnist fortunes libopenmpi-dev openmpi-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

jobs=$(nproc 2>/dev/null || echo 2)
cmake --preset default >/dev/null
cmake --build --preset default -j "$jobs"
