#!/usr/bin/env bash
# Packed trials on a GPU in under 6 minutes: the CUDA cases of the pack engine tests (generated only where
# torch.cuda.is_available()), then benchmarks/packing.py --device cuda at a reduced size. Everything it
# prints lands under $OUT (default ./gpu-check-out): device.txt, pytest.log, packing.txt.
#
# The lent GPU machines hold torch, scikit-learn, matplotlib, pytest, pyyaml, tqdm and numpy but not optuna and
# its kin (adamtune imports the rest lazily). Here (with a package index), from the repository root, once
# (checked 2026-11-27: 8 wheels, 9.8 MB):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
#       optuna==5.0.0 optuna-dashboard==0.21.0 SQLAlchemy==2.1.9 alembic==1.20.1 colorlog==6.12.0 Mako==1.4.3 \
#       greenlet==3.5.6 bottle==0.13.4
# then, on the device, with carry [".whl"] and timeout_s 420:  bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! $PY -c "import adamtune" 2>/dev/null; then
    # Not installed: the rooms as adamtune.<room> (pyproject's mapping) through links, no build needed.
    rm -rf /tmp/adamtune-shim && mkdir -p /tmp/adamtune-shim/adamtune
    for f in adamtune/*; do ln -s "$PWD/$f" /tmp/adamtune-shim/adamtune/; done
    for room in training studies results storage search_spaces; do ln -s "$PWD/$room" /tmp/adamtune-shim/adamtune/$room; done
    export PYTHONPATH=/tmp/adamtune-shim${PYTHONPATH:+:$PYTHONPATH}
fi
$PY -c "import torch; print('cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '', 'torch', torch.__version__)" \
    2>&1 | tee "$OUT/device.txt"
# Engine exactness on CUDA (pack vs alone, MLP and CNN with BatchNorm, bf16 autocast): about 1 minute.
timeout 150 $PY -m pytest -q -p no:cacheprovider tests/training_tests/test_pack.py -k cuda 2>&1 | tee "$OUT/pytest.log"
# Digits 64 trials and MNIST-format 16 trials, solo and packed: about 4 minutes.
timeout 300 $PY -m benchmarks.packing --device cuda --repeats 1 --trials 64 --mnist-trials 16 --mnist-train 12000 \
    --packs 16 64 2>&1 | tee "$OUT/packing.txt"
