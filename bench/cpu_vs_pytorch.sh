#!/usr/bin/env bash
# CPU training step: memplan run vs PyTorch (Debian's python3-torch) on the
# same machine, same model definition, same optimizer (AdamW lr 1e-3, wd 0.01).
# Step time: median over steps 2..N as each program reports it. Peak memory:
# GNU time's maximum resident set size of the whole process.
#   bench/cpu_vs_pytorch.sh [STEPS]     (needs build/memplan; tools/ needs python3-torch)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-5}
out=$(mktemp -d)
row() {  # name  memplan-compile-args  pytorch-args
  local name=$1 cargs=$2 pargs=$3
  build/memplan compile $cargs -o "$out/$name.plan.json" >/dev/null 2>&1
  local peak; peak=$(grep -m1 '"peak_bytes"' "$out/$name.plan.json" | tr -dc 0-9)
  /usr/bin/time -f "%M" -o "$out/$name.mp.rss" build/memplan run "$out/$name.plan.json" \
    --init random --synthetic --steps "$steps" --no-progress >"$out/$name.mp.log" 2>&1
  /usr/bin/time -f "%M" -o "$out/$name.pt.rss" /usr/bin/python3 tools/pytorch_step.py $pargs \
    --steps "$steps" >"$out/$name.pt.log" 2>&1
  local mp_t; mp_t=$(grep -o '([0-9.]* s)' "$out/$name.mp.log" | tail -n +2 | tr -dc '0-9.\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  local pt_t; pt_t=$(grep -o 'median_step_s=[0-9.]*' "$out/$name.pt.log" | cut -d= -f2)
  printf "| %s | %.3f | %.3f | %.0f | %.0f | %.0f |\n" "$name" "$mp_t" "$pt_t" \
    "$(echo "$peak / 1048576" | bc -l)" "$(echo "$(cat "$out/$name.mp.rss") / 1024" | bc -l)" \
    "$(echo "$(cat "$out/$name.pt.rss") / 1024" | bc -l)"
}
echo "| model | memplan step (s) | PyTorch step (s) | memplan planned peak (MiB) | memplan max RSS (MiB) | PyTorch max RSS (MiB) |"
echo "|---|---:|---:|---:|---:|---:|"
row "resnet18 batch 8" "test/models/opset17/resnet18.onnx --dim batch=8 --optimizer adamw" "resnet18 --batch 8"
row "gpt2 small 2 x 256" "test/models/opset17/gpt2.onnx --dim batch=2 --dim seq=256 --optimizer adamw" "gpt2 --batch 2 --seq 256"
rm -rf "$out"
