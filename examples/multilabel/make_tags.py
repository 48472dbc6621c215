"""Write tags.npz next to this script: 2,000 documents as 40 word counts each, tagged with any of 6 topics
(scikit-learn's make_multilabel_classification, seeded), y as 0/1 integers of shape (N, 6), so adamtune
infers task: multilabel. A stand-in for your own tagged data; offline, and the same file every time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import make_multilabel_classification

TOPICS = ("sport", "politics", "science", "music", "travel", "food")


def main() -> None:
    x, y = make_multilabel_classification(n_samples=2500, n_features=40, n_classes=len(TOPICS), n_labels=2,
                                          length=60, allow_unlabeled=False, random_state=0)
    out = Path(__file__).resolve().parent / "tags.npz"
    np.savez(out, x=x[:2000].astype(np.float32), y=y[:2000].astype(np.int64), x_test=x[2000:].astype(np.float32),
             y_test=y[2000:].astype(np.int64), classes=np.array(TOPICS))
    print(f"wrote {out}: {2000} training and {len(x) - 2000} test documents, {x.shape[1]} word counts, "
          f"{len(TOPICS)} topics ({y.sum(1).mean():.1f} per document)")


if __name__ == "__main__":
    main()
