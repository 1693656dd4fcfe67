#!/usr/bin/env bash
# Runs on the GPU machine, from the unpacked bundle (scripts/make-gpu-bundle):
#   1. the GPU tests (memplan_gpu_tests; every test must pass, none skip);
#   2. compute-sanitizer memcheck on one step of resnet18_tiny and gpt2_tiny;
#   3. `memplan run --device cuda` on both, printing planned peak, bytes
#      memplan allocated and the process's device usage;
#   4. the benchmark (bench/gpu_bench.sh), if PyTorch is installed.
# Results go to ./gpu-results/. cuBLAS / cuDNN come from the machine: the
# CUDA toolkit's lib64, or PyTorch's nvidia-* wheels (found below).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
res=$here/gpu-results
mkdir -p "$res"
export MEMPLAN_TEST_DATA=$here/data
cuda=${CUDA_HOME:-/usr/local/cuda}
libs=$cuda/lib64:$cuda/lib
for d in $(python3 - 2>/dev/null <<'PY'
import importlib.util, os
for m in ("nvidia.cudnn", "nvidia.cublas"):
    try:
        s = importlib.util.find_spec(m)
        for p in s.submodule_search_locations or []:
            print(os.path.join(p, "lib"))
    except Exception:
        pass
PY
); do libs=$libs:$d; done
export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# The binaries need glibc >= 2.34 and a libstdc++ with GLIBCXX_3.4.30 (GCC 12);
# the bundled one (lib/compat, needs glibc >= 2.36) is used only if the
# machine's is older.
if ! "$here/memplan" --help >/dev/null 2>&1; then
  export LD_LIBRARY_PATH=$here/lib/compat:$LD_LIBRARY_PATH
  "$here/memplan" --help >/dev/null || { echo "memplan does not start here (glibc $(ldd --version | head -1))"; exit 1; }
fi
status=0

nvidia-smi | tee "$res/nvidia-smi.txt"
echo "== 1. GPU tests"
"$here/memplan_gpu_tests" --gtest_output=json:"$res/gpu-tests.json" 2>&1 | tee "$res/gpu-tests.txt"
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
if grep -q '\[  SKIPPED \]' "$res/gpu-tests.txt"; then echo "GPU tests skipped: no GPU visible?"; status=1; fi

echo "== 2. compute-sanitizer and 3. memory report"
san=$(command -v compute-sanitizer || echo "$cuda/bin/compute-sanitizer")
for m in resnet18_tiny gpt2_tiny; do
  "$here/memplan" compile "$here/data/test/fixtures/$m/model.onnx" -o "$res/$m.plan.json" || status=1
  "$here/memplan" run "$res/$m.plan.json" --device cuda --init random --synthetic --steps 3 --no-progress \
    2>&1 | tee "$res/$m.run.txt" || status=1
  if [[ -x $san ]]; then
    "$san" --tool memcheck --error-exitcode 3 "$here/memplan" run "$res/$m.plan.json" --device cuda \
      --init random --synthetic --steps 1 --no-progress 2>&1 | tee "$res/$m.memcheck.txt"
    [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
  else
    echo "compute-sanitizer not found under $cuda/bin" | tee "$res/$m.memcheck.txt"; status=1
  fi
done

echo "== 4. benchmark"
if python3 -c 'import torch' 2>/dev/null; then
  MEMPLAN="$here/memplan" MEMPLAN_MODELS="$here/data/test/models/opset17" \
    bash "$here/bench/gpu_bench.sh" "$res" || status=1
else
  echo "PyTorch not importable: benchmark skipped"; status=1
fi
echo "results in $res; status $status"
exit $status
