#!/bin/bash
# The GPU checks, run once on a lent GPU machine (the device tool), from the repository root:
#   bash benchmarks/gpu_check.sh      (wheels for what the machine's image lacks in .whl/, see RESULTS.md)
# Installs adamtune into the image's own Python (the one that holds PyTorch; the machine is thrown away
# after), runs the CUDA tests and the GPU benchmarks, and writes their output under $OUT (default: ./gpu-out).
set -o pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=$(command -v python3)
$PY -m pip install -q --no-index --no-deps --no-compile .whl/*.whl || exit 1
$PY -m pip install -q --no-index --no-deps --no-build-isolation -e . || exit 1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; $PY -c "import torch, optuna; print('torch', torch.__version__, 'optuna', optuna.__version__, torch.cuda.get_device_name())"; } 2>&1 | tee "$OUT/machine.txt"
$PY -m pytest -q -p no:cacheprovider tests/training_tests/test_cuda.py ${GPU_TESTS:-} 2>&1 | tee "$OUT/tests.txt"
for bench in ${GPU_BENCHMARKS:-}; do
  $PY -m $bench 2>&1 | tee -a "$OUT/benchmarks.txt"
done
