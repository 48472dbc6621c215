"""How far a packed trial's numbers are from the same trial trained otherwise, as figures (the tests only
assert bounds): the four configurations of tests/training_tests/test_pack.py (they differ in every continuous
setting), for the MLP and the CNN on digits, on the CPU.

    python -m benchmarks.pack_exactness

Per configuration, the largest relative difference of its per-epoch validation losses: in a pack of 4 (either
slot order) vs packed alone, and packed alone vs `fit` without dropout (with dropout they differ by design).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from ._common import header

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "training_tests"))


def main() -> int:
    from test_pack import mixed, val_losses  # the test's configurations, not a copy of them

    from adamtune.data import load_dataset
    from adamtune.training import fit, fit_packed

    header("Packed trials: per-epoch validation losses, packed vs alone vs fit")
    data = load_dataset("digits")
    for model in ["mlp", "cnn"]:
        configs = mixed(model)
        together, reversed_slots = fit_packed(configs, data), fit_packed(configs[::-1], data)[::-1]
        in_pack, vs_fit = [], []
        for cfg, packed, other in zip(configs, together, reversed_slots):
            alone = val_losses(fit_packed([cfg], data)[0])
            in_pack.append(max(_apart(val_losses(p), alone) for p in (packed, other)))
            plain = dataclasses.replace(cfg, dropout=0.0)
            vs_fit.append(_apart(val_losses(fit_packed([plain], data)[0]), val_losses(fit(plain, data))))
        print(f"{model}: in a pack of 4 vs packed alone: {' '.join(f'{d:.1e}' for d in in_pack)}")
        print(f"{model}: packed alone vs fit (no dropout): {' '.join(f'{d:.1e}' for d in vs_fit)}")
    return 0


def _apart(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) / abs(y) for x, y in zip(a, b, strict=True))


if __name__ == "__main__":
    raise SystemExit(main())
