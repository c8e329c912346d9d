#!/usr/bin/env bash
# Collects what bench/gpu/check.sh runs on a GPU machine into build-gpu/ (kept under 64 MiB):
# the pipecast binary, the gpu-labelled test binaries and the GPU benchmarks, stripped, with
# every shared library they need except the CUDA libraries themselves (cuBLASLt and NCCL come
# from the GPU machine's CUDA 13), and this machine's dynamic loader and C library, so that the
# binaries run on an image that has none of Debian's libraries (check.sh starts each binary
# through the bundled loader). Builds the targets first (./build, the `default` preset).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
build="$root/build"
out="$root/build-gpu"
[ -x /usr/local/cuda/bin/nvcc ] || { echo "bundle: nvcc not found: the bundle needs a CUDA build" >&2; exit 1; }
cmake --preset default >/dev/null
# The gpu-labelled tests' executables, from ctest's own listing.
mapfile -t tests < <(ctest --test-dir "$build" -L gpu --show-only=json-v1 |
  python3 -c 'import json,sys; print("\n".join(sorted({t["command"][0] for t in json.load(sys.stdin)["tests"]})))')
targets=(pipecast gemm_bench optimizer_bench)
for t in "${tests[@]}"; do targets+=("$(basename "$t")"); done
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
bins=("$build/cli/pipecast" "$build/bench/gemm_bench" "$build/bench/optimizer_bench" "${tests[@]}")
for b in "${bins[@]}"; do strip -s -o "$out/bin/$(basename "$b")" "$b"; done
for b in "${bins[@]}"; do
  ldd "$b" | awk '$3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libcuda.so*|libcublas*|libnccl*|libcudart*) ;;  # the GPU machine's own
    *) cp -L "$lib" "$out/lib/" ;;
  esac
done
cp -L /lib64/ld-linux-x86-64.so.2 "$out/lib/"
# Open MPI's plugins are not needed: the check runs one process.
du -sh "$out" | awk '{print "bundle: " $1 " in build-gpu/"}'
size=$(du -sm "$out" | awk '{print $1}')
if [ "$size" -gt 63 ]; then echo "bundle: ${size} MiB is over the 64 MiB a GPU machine takes" >&2; exit 1; fi
