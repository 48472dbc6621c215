"""What `y` means: the task (classification, regression or multilabel), stated by the study or inferred from
the targets where that is unambiguous, and the targets of every part checked and converted for it. Every
rule about targets lives here; a broken one names the array, the index and the reason.

No torch: `adamtune check` of a study whose data fail here stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._errors import SourceError

TASKS = ("classification", "regression", "multilabel")
STATED = "stated"

Bad = Callable[[str], SourceError]


@dataclass(frozen=True)
class Targets:
    """Checked targets: `ys` maps each array name (y, y_val, y_test: those given) to int64 (N,) class labels,
    float32 (N, T) numbers or float32 (N, C) 0/1 labels; `names` are the classes, targets or labels."""

    task: str
    reason: str  # how the task was decided: "stated", or "inferred: y is float"
    ys: dict[str, np.ndarray]
    names: tuple[str, ...]


def check_targets(ys: dict[str, np.ndarray], classes: np.ndarray | None, bad: Bad,
                  task: str | None = None) -> Targets:
    """The task and every part's targets converted for it. `ys` holds `y` first (the training part), then
    y_val and y_test if given; `classes` names the classes (or targets, or labels) when given. `task` None
    infers it: 1-D integer or bool y is classification, float y regression, 2-D 0/1 integer y multilabel."""
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    for name, y in ys.items():
        if y.dtype.kind not in "buif":
            raise bad(f"{name} has dtype {y.dtype}; labels are integers 0..K-1 (class names go in 'classes')")
        if len(y) == 0:
            raise bad(f"{name} holds no targets")
        if y.dtype.kind == "f":
            _check_finite(y, name, bad)
    reason = STATED
    if task is None:
        task, reason = _infer(ys["y"], bad)
    if task == "classification":
        converted, names = _classification(ys, classes, bad, stated=reason == STATED)
    elif task == "regression":
        converted, names = _regression(ys, classes, bad)
    else:
        converted, names = _multilabel(ys, classes, bad)
    return Targets(task, reason, converted, names)


def _infer(y: np.ndarray, bad: Bad) -> tuple[str, str]:
    """The task the training targets imply, and why; a 2-D integer y that is not 0/1 is ambiguous."""
    if y.dtype.kind == "f" and y.ndim in (1, 2):
        whole = y.ndim == 1 and bool((y == np.round(y)).all())
        return "regression", "inferred: y is float" + (
            "; its values are whole numbers: give task: classification if they are class labels" if whole else "")
    if y.ndim == 1:
        return "classification", f"inferred: y is 1-D {'bool' if y.dtype.kind == 'b' else 'integer'}"
    if y.ndim == 2:
        outside = (y != 0) & (y != 1)
        if outside.any():
            i, j = np.argwhere(outside)[0]
            raise bad(f"y[{i}, {j}] = {y[i, j]}: a 2-D integer y is read as multilabel targets, 0 or 1 per label; "
                      "give task: regression if these are numbers, or fix y")
        return "multilabel", "inferred: y is 2-D integer, only 0 and 1"
    raise bad(f"y has shape {y.shape}; targets are (N,) class labels or numbers, (N, T) numbers or (N, C) 0/1 "
              "labels")


def _check_finite(y: np.ndarray, name: str, bad: Bad) -> None:
    finite = np.isfinite(y)
    if not finite.all():
        at = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise bad(f"{name}{list(at)} = {y[at]} is not a finite number; targets must be finite")


def _classification(ys: dict[str, np.ndarray], classes: np.ndarray | None, bad: Bad,
                    stated: bool) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    for name, y in ys.items():
        if y.ndim != 1:
            hint = "" if not stated else "; use task: regression or multilabel for targets of several columns"
            raise bad(f"{name} has shape {y.shape}; labels are one integer per sample, shape (N,){hint}")
        _check_labels(y, name, bad)
    names = _classes(classes, ys, bad)
    converted = {name: y.astype(np.int64) for name, y in ys.items()}
    present = np.unique(converted["y"])
    if len(present) < 2:
        raise bad(f"y holds a single class ({names[int(present[0])]!r}); a classifier needs at least two")
    return converted, names


def _check_labels(y: np.ndarray, name: str, bad: Bad) -> None:
    """Whole numbers, not negative; their upper bound is checked once the class count is known."""
    if y.dtype.kind == "f":
        whole = y == np.round(y)
        if not whole.all():
            i = int(np.argmin(whole))
            raise bad(f"{name}[{i}] = {y[i]} is not a class label; with task: classification labels are integers "
                      "0..K-1; use task: regression for numeric targets")
    negative = y < 0
    if negative.any():
        i = int(np.argmax(negative))
        raise bad(f"{name}[{i}] = {y[i]} is negative; labels are 0..K-1")


def _classes(raw: np.ndarray | None, ys: dict[str, np.ndarray], bad: Bad) -> tuple[str, ...]:
    """The class names: `classes` as given, else 0..K-1 with K = the largest label + 1. K is at most the number
    of samples (a stray label of 10^9 would make 10^9 classes), and every label is below K: the first one that
    is not is named with its array and index, before any label is converted to int64 (where a uint64 label of
    2^63 or a float of 1e30 would wrap)."""
    samples = sum(len(y) for y in ys.values())
    names = _names(raw, bad)
    if names is not None and len(names) > samples:
        raise bad(f"classes names {len(names)} classes but there are {samples} samples; more classes than "
                  "samples is refused")
    limit = len(names) if names is not None else samples
    for name, y in ys.items():
        over = y >= limit
        if over.any():
            i = int(np.argmax(over))
            if names is not None:
                raise bad(f"{name}[{i}] = {y[i]} but classes names only {len(names)} classes; labels are 0..K-1 "
                          "indexing classes")
            raise bad(f"{name}[{i}] = {y[i]} would make more classes than the {samples} samples; labels are "
                      "0..K-1, K at most the number of samples")
    if names is not None:
        return names
    return tuple(str(i) for i in range(max(int(y.max()) for y in ys.values()) + 1))


def _regression(ys: dict[str, np.ndarray], classes: np.ndarray | None,
                bad: Bad) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Float32 (N, T), a 1-D y being one target; named by `classes`, else y (one target) or y0..y{T-1}."""
    width = _same_width(ys, bad, "targets", "numbers, shape (N,) or (N, T)", ndims=(1, 2))
    converted = {}
    for name, y in ys.items():
        with np.errstate(over="ignore"):  # a float64 beyond float32 becomes inf: refused just below
            y32 = y.reshape(len(y), -1).astype(np.float32)
        beyond = np.argwhere(~np.isfinite(y32))
        if len(beyond):
            at = tuple(int(k) for k in beyond[0][:y.ndim])
            raise bad(f"{name}{list(at)} = {y[at]} is beyond float32's range (about 3.4e38); scale the targets")
        converted[name] = y32
    names = _names(raw=classes, bad=bad)
    if names is None:
        names = ("y",) if ys["y"].ndim == 1 else tuple(f"y{i}" for i in range(width))
    elif len(names) != width:
        raise bad(f"classes names {len(names)} targets but y has {width}; give one name per target column")
    return converted, names


def _multilabel(ys: dict[str, np.ndarray], classes: np.ndarray | None,
                bad: Bad) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Float32 (N, C) of 0 and 1; named by `classes`, else 0..C-1. A label never (or always) on in the training
    part is allowed, but a training part in which no label is ever on cannot train a classifier."""
    width = _same_width(ys, bad, "labels", "0/1 per label, shape (N, C)", ndims=(2,))
    for name, y in ys.items():
        outside = (y != 0) & (y != 1)
        if outside.any():
            i, j = (int(k) for k in np.argwhere(outside)[0])
            raise bad(f"{name}[{i}, {j}] = {y[i, j]} is not 0 or 1; with task: multilabel targets are 0/1 per label")
    if not (ys["y"] == 1).any():
        raise bad("y holds no 1: no training sample has any label on; a multilabel classifier needs positive labels")
    names = _names(raw=classes, bad=bad)
    if names is None:
        names = tuple(str(i) for i in range(width))
    elif len(names) != width:
        raise bad(f"classes names {len(names)} labels but y has {width}; give one name per label column")
    return {name: y.astype(np.float32) for name, y in ys.items()}, names


def _same_width(ys: dict[str, np.ndarray], bad: Bad, what: str, form: str, ndims: tuple[int, ...]) -> int:
    """The number of columns (1 for a 1-D y); every part must have y's shape after the first axis."""
    y = ys["y"]
    for name, part in ys.items():
        if part.ndim not in ndims:
            raise bad(f"{name} has shape {part.shape}; with task: {'regression' if 1 in ndims else 'multilabel'} "
                      f"targets are {form}")
        if part.shape[1:] != y.shape[1:]:
            raise bad(f"{name} has shape {part.shape} but y has {y.shape}; every part needs the same {what}")
    width = 1 if y.ndim == 1 else y.shape[1]
    if width == 0:
        raise bad(f"y has shape {y.shape}; it needs at least one column of {what}")
    return width


def _names(raw: np.ndarray | None, bad: Bad) -> tuple[str, ...] | None:
    """The names `classes` gives, one distinct name each; None when it is not given."""
    if raw is None:
        return None
    raw = np.asarray(raw)
    if raw.ndim != 1:
        raise bad(f"classes has shape {raw.shape}; it holds one name per class, shape (K,)")
    names = tuple(str(c) for c in raw)
    seen: dict[str, int] = {}
    for i, c in enumerate(names):
        if c in seen:
            raise bad(f"classes[{i}] = {c!r} repeats classes[{seen[c]}]; every class needs its own name")
        seen[c] = i
    return names
