"""Print the tuned network's test RMSE (`adamtune train ... --out MODEL_DIR`) next to the baselines
make_diabetes.py fitted on the same split: python compare.py MODEL_DIR"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(model_dir: str) -> None:
    tuned = json.loads((Path(model_dir) / "metrics.json").read_text())
    rows = {"adamtune (tuned MLP)": tuned["test_rmse"],
            **json.loads((HERE / "baselines.json").read_text())["test_rmse"]}
    print(f"{'model':<32} test RMSE")
    for name, rmse in rows.items():
        print(f"{name:<32} {rmse:9.2f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "model")
