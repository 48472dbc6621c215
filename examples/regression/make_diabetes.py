"""Write diabetes.npz next to this script from scikit-learn's bundled diabetes data (442 patients, 10
features, a disease-progression score a year later): a seeded 80/20 train/test split as float32 arrays, the
target as floats, so adamtune infers task: regression. Offline, and the same file every time.

Then fit scikit-learn's Ridge and HistGradientBoostingRegressor on the same training part and write their
test RMSE to baselines.json, so a tuned network is compared with the usual baselines on the same split
(`python compare.py MODEL_DIR` prints the three side by side)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.metrics import root_mean_squared_error
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent


def main() -> None:
    x, y = load_diabetes(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
    np.savez(HERE / "diabetes.npz", x=x_train.astype(np.float32), y=y_train.astype(np.float32),
             x_test=x_test.astype(np.float32), y_test=y_test.astype(np.float32),
             classes=np.array(["progression"]))
    baselines = {}
    for name, model in (("Ridge", RidgeCV(alphas=np.logspace(-3, 3, 13))),
                        ("HistGradientBoostingRegressor", HistGradientBoostingRegressor(random_state=0))):
        model.fit(x_train, y_train)
        baselines[name] = float(root_mean_squared_error(y_test, model.predict(x_test)))
    (HERE / "baselines.json").write_text(json.dumps({"test_rmse": baselines}, indent=2) + "\n")
    print(f"wrote {HERE / 'diabetes.npz'}: {len(x_train)} training and {len(x_test)} test patients, 10 features; "
          + ", ".join(f"{k} test RMSE {v:.1f}" for k, v in baselines.items()))


if __name__ == "__main__":
    main()
