#!/usr/bin/env bash
# The GPU device check (docs/performance.md, "On a GPU"): runs, on a machine with an NVIDIA GPU,
# the binaries bench/gpu/bundle.sh collected in build-gpu/ on a build machine, and prints one
# table:
#   - the gpu-labelled tests: passed / total;
#   - GEMM TFLOP/s at the models' shapes and at 8192^3 bf16, against cuBLASLt's own choice;
#   - the fused optimizer (+ prediction) GB/s against a device-to-device copy, and PyTorch's
#     fused AdamW on the same tensor;
#   - the GPT of gpt.job.yaml with 4 stages on one GPU under 7 methods: time per minibatch, the
#     loss after 30 steps, and the simulator fed the run's measured costs against the measured
#     time; the small copy (gpt-small.job.yaml) on the CPU and the CUDA device, loss against loss;
#   - the same GPT's training step in PyTorch.
# Every step has its own time limit and the whole check stays within 6 minutes (CHECK_BUDGET_S,
# default 340 s; steps the budget cannot cover are skipped and show as failed). Logs and JSON go
# to $OUT (or /tmp/pipecast-gpu-check). Usage: bench/gpu/check.sh [BUNDLE_DIR]
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bundle="${1:-$root/build-gpu}"
out="${OUT:-/tmp/pipecast-gpu-check}"
mkdir -p "$out"
start=$(date +%s)
[ -x "$bundle/bin/pipecast" ] || { echo "check: no bundle at $bundle (run bench/gpu/bundle.sh)"; exit 1; }

# cuBLASLt and NCCL from this machine's CUDA: the toolkit's folders, then PyTorch's wheels.
cuda_libs=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu \
         $(python3 -c 'import glob,site; print(" ".join(glob.glob(site.getsitepackages()[0]+"/nvidia/*/lib")))' 2>/dev/null); do
  [ -d "$d" ] && cuda_libs="$cuda_libs:$d"
done
libs="$bundle/lib$cuda_libs"
elapsed() { echo $(($(date +%s) - start)); }
budget=${CHECK_BUDGET_S:-340}  # the whole check, in seconds (6 minutes with the table)
# The smaller of a step's own limit and what is left of the budget (0: skip the step).
cap() {
  local left=$((budget - $(elapsed)))
  if [ "$left" -lt 5 ]; then echo 0; elif [ "$1" -lt "$left" ]; then echo "$1"; else echo "$left"; fi
}
# Runs a bundled binary through the bundled loader and C library, within its limit and the
# budget; a step skipped for want of time exits 124 like one that ran out of it.
run() {
  local limit
  limit=$(cap "$1")
  local bin=$2
  shift 2
  [ "$limit" -gt 0 ] || return 124
  timeout "$limit" "$bundle/lib/ld-linux-x86-64.so.2" --library-path "$libs" "$bundle/bin/$bin" "$@"
}
# The same for a Python script of bench/gpu/ (the machine's own Python and PyTorch).
py() {
  local limit
  limit=$(cap "$1")
  [ "$limit" -gt 0 ] || { echo "skipped: out of time"; return 124; }
  timeout "$limit" python3 "$root/bench/gpu/$2"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/gpu.txt" 2>&1
echo "check: $(cat "$out/gpu.txt")"

# 1. GPU tests.
passed=0 total=0
for t in "$bundle"/bin/*_test; do
  name=$(basename "$t")
  run 150 "$name" --gtest_brief=1 > "$out/$name.log" 2>&1
  p=$(grep -oP '\[  PASSED  \] \K[0-9]+' "$out/$name.log" | tail -1)
  f=$(grep -oP '\[  FAILED  \] \K[0-9]+(?= test)' "$out/$name.log" | tail -1)
  s=$(grep -oP '\[  SKIPPED \] \K[0-9]+' "$out/$name.log" | tail -1)
  p=${p:-0} f=${f:-0} s=${s:-0}
  [ "$p$f$s" = "000" ] && f=1  # crashed or timed out before a summary
  passed=$((passed + p)) total=$((total + p + f + s))
  echo "check: $name passed $p failed $f skipped $s ($(elapsed) s)"
done

# 2. GEMM and optimizer bandwidth.
run 60 gemm_bench > "$out/gemm.txt" 2>&1
run 60 optimizer_bench > "$out/optimizer.txt" 2>&1
py 60 torch_adamw.py > "$out/torch_adamw.txt" 2>&1
echo "check: benchmarks done ($(elapsed) s)"

# 3. The pipelined GPT, one method at a time (a slow method cannot starve the others).
methods=(gpipe 1f1b zb-h1 pipedream spectrain pipeoptim paci)
for m in "${methods[@]}"; do
  run 45 pipecast run "$root/bench/gpu/gpt.job.yaml" -q --methods "$m" --format json \
    -o "$out/gpt-$m.json" --compare-sim > "$out/gpt-$m.txt" 2>&1
  echo "check: gpt $m exit $? ($(elapsed) s)"
done
# 1F1B again with each stage on its own share of the SMs (green contexts).
sed 's/^device: cuda$/device: cuda\nsm_partition: true/' "$root/bench/gpu/gpt.job.yaml" > "$out/gpt-sm.job.yaml"
run 45 pipecast run "$out/gpt-sm.job.yaml" -q --methods 1f1b --format json \
  -o "$out/gpt-1f1b-sm.json" --compare-sim > "$out/gpt-1f1b-sm.txt" 2>&1
echo "check: gpt 1f1b with SM partitions exit $? ($(elapsed) s)"
# And with the GEMMs' inputs in bfloat16.
sed 's/^device: cuda$/device: cuda\nprecision: bf16/' "$root/bench/gpu/gpt.job.yaml" > "$out/gpt-bf16.job.yaml"
run 45 pipecast run "$out/gpt-bf16.job.yaml" -q --methods 1f1b --format json \
  -o "$out/gpt-1f1b-bf16.json" --compare-sim > "$out/gpt-1f1b-bf16.txt" 2>&1
echo "check: gpt 1f1b in bf16 exit $? ($(elapsed) s)"
for dev in cpu cuda; do
  run 90 pipecast run "$root/bench/gpu/gpt-small.job.yaml" -q --device "$dev" --format json \
    -o "$out/small-$dev.json" > "$out/small-$dev.txt" 2>&1
  echo "check: small gpt on $dev exit $? ($(elapsed) s)"
done
py 90 torch_gpt.py > "$out/torch_gpt.txt" 2>&1
echo "check: done in $(elapsed) s"

# 4. One table.
python3 "$root/bench/gpu/check_table.py" "$out" "$passed" "$total" | tee "$out/table.md"
