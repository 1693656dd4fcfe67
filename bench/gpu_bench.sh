#!/usr/bin/env bash
# GPU training step: memplan (`memplan run --device cuda`) against PyTorch
# (tools/gpu_bench_pytorch.py) on the same GPU, in the same run, same model
# code, AdamW. Rows: resnet50 batch 64 at 224x224 and GPT-2 small batch 8 x
# 1024; PyTorch fp32 (TF32 off), bf16 autocast, and fp32 with activation
# checkpointing on every block. memplan: fp32 and bf16 (--precision bf16:
# GEMMs and convolutions in bf16 on cuBLAS / cuDNN, the other lowered ops on
# f32 kernels over copies in their planned workspaces), with the cost model's estimated step time
# beside the measured one (and `memplan profile` per-op timings in
# RESULTS_DIR/*.profile*.json where that subcommand exists). Peak: memplan's planned peak, the
# bytes it allocated and the process's device usage as `memplan run` reports
# them; PyTorch's max_memory_allocated and max_memory_reserved.
#   bench/gpu_bench.sh [RESULTS_DIR]    (MEMPLAN=path/to/memplan, STEPS=10)
# Writes RESULTS_DIR/gpu_bench.md (a table for docs/benchmarks.md) and the raw logs.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
res=${1:-gpu-bench-results}
mkdir -p "$res"
memplan=${MEMPLAN:-$here/../build/memplan}
steps=${STEPS:-10}
# The ONNX models: the repo's test/models/opset17, or the bundle's data/.
models=${MEMPLAN_MODELS:-$here/../test/models/opset17}
[[ -d $models ]] || models=$here/../data/test/models/opset17
tools=$here/../tools
[[ -f $tools/gpu_bench_pytorch.py ]] || tools=$here
mib() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }

out=$res/gpu_bench.md
dev=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
{
  echo "GPU: $dev, $(date -u +%Y-%m-%d), $steps steps (median of steps 2..N)"
  echo
  echo "| model | run | step (s) | memplan est. step (s) | peak: planned / allocated / process (MiB) | PyTorch max allocated / reserved (MiB) |"
  echo "|---|---|---:|---:|---:|---:|"
} >"$out"

mp_row() {  # label run-label compile-args
  local label=$1 run=$2; shift 2
  local base=$label.$run
  if ! "$memplan" compile "$@" -o "$res/$base.plan.json" >"$res/$base.compile.log" 2>&1; then
    echo "| $label | memplan $run | compile failed (see $base.compile.log) | | | |" >>"$out"; return
  fi
  if ! "$memplan" run "$res/$base.plan.json" --device cuda --init random --synthetic --steps "$steps" \
       --no-progress >"$res/$base.run.log" 2>&1; then
    echo "| $label | memplan $run | run failed (see $base.run.log) | | | |" >>"$out"; return
  fi
  local t; t=$(grep -o '([0-9.]* s)' "$res/$base.run.log" | tail -n +2 | tr -dc '0-9.\n' | sort -n |
               awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  local line; line=$(grep '^device:' "$res/$base.run.log")
  local plan alloc proc
  plan=$(echo "$line" | sed -n 's/.*plan peak \([0-9]*\).*/\1/p')
  alloc=$(echo "$line" | sed -n 's/.*allocated \([0-9]*\).*/\1/p')
  proc=$(echo "$line" | sed -n 's/.*process uses \([0-9]*\).*/\1/p')
  # The cost model's estimate: the plan's per-op est_seconds, summed.
  local est; est=$(python3 -c 'import json,sys; print("%.4f" % sum(o.get("est_seconds", 0) for o in json.load(open(sys.argv[1]))["ops"]))' "$res/$base.plan.json")
  # Calibrated per-op times, when this memplan has the profile subcommand.
  "$memplan" profile "$res/$base.plan.json" -o "$res/$base.profile.json" >"$res/$base.profile.log" 2>&1 || true
  echo "| $label | memplan $run | $t | $est | $(mib "$plan") / $(mib "$alloc") / $(mib "${proc:-0}") | |" >>"$out"
}

pt_row() {  # label run-label args
  local label=$1 run=$2; shift 2
  if python3 "$tools/gpu_bench_pytorch.py" "$@" --steps "$steps" --out "$res/$label.$run.json" \
       >"$res/$label.$run.log" 2>&1; then
    python3 - "$res/$label.$run.json" "$label" "$run" >>"$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("| %s | PyTorch %s | %.4f | | | %.0f / %.0f |" % (sys.argv[2], sys.argv[3], r["median_step_s"],
      r["max_memory_allocated"] / 2**20, r["max_memory_reserved"] / 2**20))
PY
  else
    echo "| $label | PyTorch $run | failed (see $label.$run.log) | | | |" >>"$out"
  fi
}

for spec in "resnet50_b64|resnet50.onnx --dim batch=64|resnet50 --batch 64" \
            "gpt2_small_b8_s1024|gpt2.onnx --dim batch=8 --dim seq=1024|gpt2 --batch 8 --seq 1024"; do
  IFS='|' read -r label cargs pargs <<<"$spec"
  read -r -a c <<<"$cargs"
  c[0]=$models/${c[0]}
  read -r -a p <<<"$pargs"
  mp_row "$label" fp32 "${c[@]}" --optimizer adamw --precision fp32
  mp_row "$label" bf16 "${c[@]}" --optimizer adamw --precision bf16
  pt_row "$label" fp32 "${p[@]}" --precision fp32
  pt_row "$label" bf16 "${p[@]}" --precision bf16
  pt_row "$label" fp32-checkpoint "${p[@]}" --precision fp32 --checkpoint
done
cat "$out"
