#!/usr/bin/env bash
# The GPU checks, run once on a lent GPU machine (the device tool) from the repository root, in about
# 7 minutes: the CUDA tests (tests/training_tests/test_cuda.py and the CUDA cases of test_pack.py, both
# generated only where torch.cuda.is_available(), mixed-shape packs included), then benchmarks/packing.py
# --device cuda at a reduced size with `auto` (the default, which packs on a GPU) beside K = 16 and 64, then
# benchmarks/profile_shares.py (where a trial's time goes, solo and auto). Output lands under $OUT (default
# ./gpu-check-out): machine.txt, tests.txt, packing.txt, profile.txt.
#
# The lent machines' image holds torch, scikit-learn, matplotlib, pytest, pyyaml, tqdm and numpy, but not
# optuna and its kin, and cannot reach a package index. Here, from the repository root, once:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
#       --platform manylinux_2_24_x86_64 -d .whl optuna==5.0.0 optuna-dashboard==0.21.0 SQLAlchemy==2.1.9 \
#       alembic==1.20.1 colorlog==6.12.0 Mako==1.4.3 greenlet==3.5.6 bottle==0.13.4 waitress==3.0.2 \
#       plotly==7.1.0 cmaes==0.13.1 setuptools==84.2.1
# then run it there with carry [".whl"]. It installs into the image's own Python (the machine is thrown
# away after), so the tests find the `adamtune` command beside that Python.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=$(command -v python3)
$PY -m pip install -q --no-index --no-deps --no-compile .whl/*.whl || exit 1
$PY -m pip install -q --no-index --no-deps --no-build-isolation -e . || exit 1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $PY -c "import torch, optuna; print('torch', torch.__version__, 'optuna', optuna.__version__, torch.cuda.get_device_name())"
} 2>&1 | tee "$OUT/machine.txt"
timeout 200 $PY -m pytest -q -p no:cacheprovider tests/training_tests/test_cuda.py tests/training_tests/test_pack.py \
    -k "cuda or gpu" 2>&1 | tee "$OUT/tests.txt"
timeout 300 $PY -m benchmarks.packing --device cuda --repeats 1 --trials 64 --mnist-trials 16 --mnist-train 12000 \
    --packs default 16 64 2>&1 | tee "$OUT/packing.txt"
timeout 150 $PY -m benchmarks.profile_shares --trials 20 --pack 1 auto 2>&1 | tee "$OUT/profile.txt"
