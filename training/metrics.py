"""The metrics a trial can be judged by: each one's task, direction and value, computed by scikit-learn's
implementation (already a dependency, and the one users check against) on one split's predictions, or by the
user's own function. Nothing heavy is imported until a value is computed (`adamtune check` reads the names).

Predictions are what `TaskLoss.predictions` gives: class probabilities (N, C), values in the user's units
(N, T), label probabilities (N, C); a multi-label prediction is a label when its probability is at least 0.5.
Validation metrics are stored as `val_<name>`, test metrics (`train`) as `test_<name>`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adamtune.data import TASKS
from adamtune.errors import InputError

LABEL_THRESHOLD = 0.5  # a multi-label prediction holds each label whose probability is at least this

CLASSIFICATION, REGRESSION, MULTILABEL = TASKS


@dataclass(frozen=True)
class Metric:
    tasks: tuple[str, ...]
    direction: str
    about: str


METRICS = {
    "loss": Metric((CLASSIFICATION, REGRESSION, MULTILABEL), "minimize", "the task's plain loss (cross-entropy; "
                   "squared error of standardised targets; binary cross-entropy), whatever the trial trains with"),
    "accuracy": Metric((CLASSIFICATION,), "maximize", "share of samples whose most likely class is right"),
    "balanced_accuracy": Metric((CLASSIFICATION,), "maximize", "mean recall over the classes"),
    "macro_f1": Metric((CLASSIFICATION, MULTILABEL), "maximize", "F1 per class (label), averaged unweighted"),
    "top5_accuracy": Metric((CLASSIFICATION,), "maximize", "the right class among the 5 most likely (more than 5 "
                            "classes)"),
    "auroc": Metric((CLASSIFICATION,), "maximize", "area under the ROC curve of two classes"),
    "auroc_ovr": Metric((CLASSIFICATION,), "maximize", "one-vs-rest ROC AUC averaged over the classes (its "
                        "multi-class form)"),
    "rmse": Metric((REGRESSION,), "minimize", "root mean squared error, in the targets' units"),
    "mae": Metric((REGRESSION,), "minimize", "mean absolute error, in the targets' units"),
    "r2": Metric((REGRESSION,), "maximize", "coefficient of determination"),
    "micro_f1": Metric((MULTILABEL,), "maximize", "F1 over every (sample, label) decision"),
    "subset_accuracy": Metric((MULTILABEL,), "maximize", "share of samples with every label right"),
}
# What `train` reports on the test split, per task (and every epoch's record holds the objective's).
TASK_METRICS = {task: tuple(name for name, m in METRICS.items() if task in m.tasks and name != "loss")
                for task in TASKS}
COMPUTED_BY_LOOP = ("loss", "accuracy")  # the loops compute these in torch every epoch, without the host


class MetricError(InputError):
    """The user's metric is missing, raises, or returns something that is not one finite number."""


def split_name(objective: str) -> str:
    """`val_rmse` -> `rmse`."""
    return objective.removeprefix("val_")


def metric_problem(name: str, task: str, num_classes: int) -> str | None:
    """Why built-in metric `name` cannot judge a `task` with `num_classes` outputs (None when it can)."""
    metric = METRICS.get(name)
    if metric is None:
        return f"unknown metric {name!r} (metrics: {', '.join(METRICS)})"
    if task not in metric.tasks:
        fits = ", ".join(n for n, m in METRICS.items() if task in m.tasks)
        return f"{name} does not judge {task} (for {task}: {fits})"
    if name == "auroc" and num_classes != 2:
        return f"auroc is for two classes and there are {num_classes}; use auroc_ovr (one-vs-rest) for more"
    if name == "top5_accuracy" and num_classes <= 5:
        return f"top5_accuracy needs more than 5 classes, and there are {num_classes}"
    return None


def applicable(task: str, num_classes: int) -> tuple[str, ...]:
    """The task's metrics that fit this many outputs (what `train` reports on the test split)."""
    return tuple(n for n in TASK_METRICS[task] if metric_problem(n, task, num_classes) is None)


@dataclass(frozen=True)
class UserMetric:
    """The user's `module:function`, called as function(predictions, targets) with numpy arrays."""

    entry: str
    direction: str
    folder: str = "."
    origin: str = ""

    @property
    def name(self) -> str:
        return self.entry.rsplit(":", 1)[-1].rsplit(".", 1)[-1]

    def __call__(self, predictions: Any, targets: Any) -> float:
        from adamtune.data import load_entry, one_line

        key = "objective.entry"
        function = load_entry(self.entry, self.folder, origin=self.origin, key=key)
        try:
            value = function(predictions, targets)
        except Exception as exc:  # whatever the user's function raises
            raise MetricError(self.origin, key, f"{self.entry} raised {one_line(exc)}") from None
        return self._one_number(value)

    def _one_number(self, value: Any) -> float:
        import numpy as np

        try:
            array = np.asarray(value)
        except Exception:  # a value numpy cannot hold (a ragged list)
            array = np.asarray(None)
        if array.size != 1 or array.dtype.kind not in "biuf":
            raise MetricError(self.origin, "objective.entry", f"{self.entry} returned {type(value).__name__} of "
                              f"shape {array.shape}; a metric returns one number")
        number = float(array.reshape(()))
        if not math.isfinite(number):
            raise MetricError(self.origin, "objective.entry", f"{self.entry} returned {number}; a metric returns "
                              "a finite number")
        return number


@dataclass(frozen=True)
class Scoring:
    """Which metrics an evaluation computes beyond the loops' own loss and accuracy (`names`, built-in) and
    the user's metric; `compute` returns them by name."""

    names: tuple[str, ...] = ()
    user: UserMetric | None = None

    @property
    def needs_predictions(self) -> bool:
        return bool(self.user) or any(n not in COMPUTED_BY_LOOP for n in self.names)

    def compute(self, task: str, predictions: Any, targets: Any) -> dict[str, float]:
        """Each metric of predictions (N, C|T) and targets (numpy) by name; the user's by its function's."""
        values = {name: value(name, task, predictions, targets) for name in self.names
                  if name not in COMPUTED_BY_LOOP}
        if self.user is not None:
            values[self.user.name] = self.user(user_view(task, predictions), user_view(task, targets))
        return values


def user_view(task: str, array: Any) -> Any:
    """One regression target is (N,), as the user gave it; everything else as it is."""
    return array[:, 0] if task == REGRESSION and array.ndim == 2 and array.shape[1] == 1 else array


def value(name: str, task: str, predictions: Any, targets: Any) -> float:
    """Built-in metric `name` by scikit-learn."""
    return _FUNCTIONS[name](predictions, targets)


def _labels(probabilities: Any) -> Any:
    return probabilities.argmax(1)


def _accuracy(p, y) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y, _labels(p)))


def _balanced_accuracy(p, y) -> float:
    import warnings

    from sklearn.metrics import balanced_accuracy_score

    with warnings.catch_warnings():  # a class absent from the split: sklearn warns and averages the others
        warnings.simplefilter("ignore")
        return float(balanced_accuracy_score(y, _labels(p)))


def _macro_f1(p, y) -> float:
    from sklearn.metrics import f1_score

    if y.ndim == 2:  # multilabel
        return float(f1_score(y.astype(int), (p >= LABEL_THRESHOLD).astype(int), average="macro",
                              zero_division=0))
    return float(f1_score(y, _labels(p), average="macro", labels=range(p.shape[1]), zero_division=0))


def _top5(p, y) -> float:
    from sklearn.metrics import top_k_accuracy_score

    return float(top_k_accuracy_score(y, p, k=5, labels=range(p.shape[1])))


def _auroc(p, y) -> float:
    from sklearn.metrics import roc_auc_score

    return _auc(lambda: roc_auc_score(y, p[:, 1]))


def _auroc_ovr(p, y) -> float:
    from sklearn.metrics import roc_auc_score

    return _auc(lambda: roc_auc_score(y, p, multi_class="ovr", labels=range(p.shape[1])))


def _auc(compute: Callable[[], float]) -> float:
    """ROC AUC is undefined when the split lacks a class: NaN then (the trial is judged on nothing)."""
    try:
        return float(compute())
    except ValueError:
        return math.nan


def _rmse(p, y) -> float:
    from sklearn.metrics import root_mean_squared_error

    return float(root_mean_squared_error(y, p))


def _mae(p, y) -> float:
    from sklearn.metrics import mean_absolute_error

    return float(mean_absolute_error(y, p))


def _r2(p, y) -> float:
    from sklearn.metrics import r2_score

    return float(r2_score(y, p))


def _micro_f1(p, y) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y.astype(int), (p >= LABEL_THRESHOLD).astype(int), average="micro", zero_division=0))


def _subset_accuracy(p, y) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y.astype(int), (p >= LABEL_THRESHOLD).astype(int)))


def _loss(p, y) -> float:
    raise AssertionError("the loss is computed by the loops")


_FUNCTIONS: dict[str, Callable[[Any, Any], float]] = {
    "loss": _loss, "accuracy": _accuracy, "balanced_accuracy": _balanced_accuracy, "macro_f1": _macro_f1,
    "top5_accuracy": _top5, "auroc": _auroc, "auroc_ovr": _auroc_ovr, "rmse": _rmse, "mae": _mae, "r2": _r2,
    "micro_f1": _micro_f1, "subset_accuracy": _subset_accuracy,
}
assert _FUNCTIONS.keys() == METRICS.keys()
