"""What y means: the task inferred from the targets or stated, the targets converted for it (int64 class labels,
float32 (N, T) numbers, float32 (N, C) 0/1 labels), every bad target one line naming the file, key, array and
index, and the regression statistics taken from the training split alone."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from adamtune.data import DataError, DataSource, SourceError, load_dataset
from conftest import adamtune, write_study
from own_data import write_images

N = 20


def npz(tmp_path, **arrays) -> DataSource:
    """An .npz of `arrays` (x: N float features unless given) as a study's dataset."""
    arrays.setdefault("x", np.ones((N, 3), np.float32))
    np.savez(tmp_path / "data.npz", **arrays)
    return DataSource.parse({"type": "arrays", "path": "data.npz"}, origin="study.yaml", folder=tmp_path)


def zero_one(columns: int, dtype=np.int64) -> np.ndarray:
    return (np.arange(N * columns).reshape(N, columns) % 3 == 0).astype(dtype)


# y -> (task, how it was decided, labels' dtype and width, names)
INFERRED = {
    "1-D integer": (np.arange(N) % 3, "classification", "inferred: y is 1-D integer", torch.int64, None,
                    ("0", "1", "2")),
    "1-D bool": (np.arange(N) % 2 == 0, "classification", "inferred: y is 1-D bool", torch.int64, None, ("0", "1")),
    "1-D float": (np.linspace(-1, 1, N), "regression", "inferred: y is float", torch.float32, 1, ("y",)),
    "1-D float of whole numbers (pandas' 0.0/1.0)": (
        np.arange(N) % 2 * 1.0, "regression",
        "inferred: y is float; its values are whole numbers: give task: classification if they are class labels",
        torch.float32, 1, ("y",)),
    "2-D float": (np.linspace(0, 1, N * 3).reshape(N, 3), "regression", "inferred: y is float", torch.float32, 3,
                  ("y0", "y1", "y2")),
    "2-D integer 0/1": (zero_one(4), "multilabel", "inferred: y is 2-D integer, only 0 and 1", torch.float32, 4,
                        ("0", "1", "2", "3")),
    "2-D bool": (zero_one(2, bool), "multilabel", "inferred: y is 2-D integer, only 0 and 1", torch.float32, 2,
                 ("0", "1")),
}


@pytest.mark.parametrize("case", INFERRED, ids=list(INFERRED))
def test_the_task_is_inferred_from_the_targets_and_they_are_converted_for_it(tmp_path, case):
    y, task, reason, dtype, width, names = INFERRED[case]
    data = load_dataset(npz(tmp_path, y=y))
    assert (data.task, data.task_reason, data.classes, data.num_classes) == (task, reason, names, len(names))
    labels = torch.cat([data.train.labels, data.val.labels, data.test.labels])
    assert labels.dtype == dtype and labels.shape == ((N,) if width is None else (N, width))
    assert sorted(labels.tolist()) == sorted(np.asarray(y, np.float32).reshape(labels.shape).tolist())


# (arrays, task) -> (labels' dtype and width, names): a stated task takes what it should
STATED = {
    "classification of whole floats": ({"y": np.arange(N) % 2 * 1.0}, "classification", torch.int64, None,
                                       ("0", "1")),
    "classification of named classes": ({"y": np.arange(N) % 2, "classes": np.array(["cat", "dog"])},
                                        "classification", torch.int64, None, ("cat", "dog")),
    "regression of 1-D integers (counts)": ({"y": np.arange(N) % 7}, "regression", torch.float32, 1, ("y",)),
    "regression of 2-D integers, named": ({"y": np.arange(N * 2).reshape(N, 2), "classes": np.array(["h", "w"])},
                                          "regression", torch.float32, 2, ("h", "w")),
    "multilabel of 0.0/1.0 floats": ({"y": zero_one(3, np.float64)}, "multilabel", torch.float32, 3, ("0", "1", "2")),
    "multilabel, named, a label never on": (
        {"y": np.stack([np.arange(N) % 2, np.zeros(N, int)], 1), "classes": np.array(["red", "round"])},
        "multilabel", torch.float32, 2, ("red", "round")),
}


@pytest.mark.parametrize("case", STATED, ids=list(STATED))
def test_a_stated_task_takes_the_targets_it_should(tmp_path, case):
    arrays, task, dtype, width, names = STATED[case]
    data = load_dataset(npz(tmp_path, **arrays), task=task)
    assert (data.task, data.task_reason, data.classes, data.num_classes) == (task, "stated", names, len(names))
    assert data.train.labels.dtype == dtype and data.train.labels.shape[1:] == (() if width is None else (width,))
    assert data.facts.task == task and data.facts.task_reason == "stated"


def _y_with(value, at, shape=(N,), dtype=np.float64):
    y = (np.arange(int(np.prod(shape))).reshape(shape) % 2).astype(dtype)
    y[at] = value
    return y


# (arrays, task) -> the reason after "study.yaml: dataset.path: DIR/data.npz: "
BAD = {
    "a non-whole float with task: classification": (
        {"y": _y_with(2.5, 3)}, "classification",
        "y[3] = 2.5 is not a class label; with task: classification labels are integers 0..K-1; use task: regression "
        "for numeric targets"),
    "a NaN target (inferred regression)": ({"y": _y_with(np.nan, 2)}, None,
                                           "y[2] = nan is not a finite number; targets must be finite"),
    "a NaN label with task: classification": ({"y": _y_with(np.nan, 5)}, "classification",
                                              "y[5] = nan is not a finite number; targets must be finite"),
    "an infinite target in y_val": (
        {"y": _y_with(0.5, 0, (N, 2)), "x_val": np.ones((4, 3)), "y_val": _y_with(-np.inf, (1, 0), (4, 2))}, None,
        "y_val[1, 0] = -inf is not a finite number; targets must be finite"),
    "a target beyond float32": ({"y": _y_with(1e300, 3)}, "regression",
                                "y[3] = 1e+300 is beyond float32's range (about 3.4e38); scale the targets"),
    "a 2-D integer y of other values than 0/1": (
        {"y": _y_with(5, (2, 1), (N, 3), np.int64)}, None,
        "y[2, 1] = 5: a 2-D integer y is read as multilabel targets, 0 or 1 per label; give task: regression if "
        "these are numbers, or fix y"),
    "a y of three dimensions": ({"y": np.zeros((N, 2, 2))}, None, "y has shape (20, 2, 2); targets are (N,) class "
                                "labels or numbers, (N, T) numbers or (N, C) 0/1 labels"),
    "a 2-D y with task: classification": (
        {"y": zero_one(2)}, "classification",
        "y has shape (20, 2); labels are one integer per sample, shape (N,); use task: regression or multilabel "
        "for targets of several columns"),
    "a multilabel value outside 0/1": ({"y": _y_with(2, (4, 1), (N, 3), np.int64)}, "multilabel",
                                       "y[4, 1] = 2 is not 0 or 1; with task: multilabel targets are 0/1 per label"),
    "a multilabel y_val outside 0/1 (inferred)": (
        {"y": zero_one(2), "x_val": np.ones((4, 3)), "y_val": _y_with(-1, (3, 0), (4, 2), np.int64)}, None,
        "y_val[3, 0] = -1 is not 0 or 1; with task: multilabel targets are 0/1 per label"),
    "a multilabel part of another width": (
        {"y": zero_one(2), "x_test": np.ones((4, 3)), "y_test": np.zeros((4, 3), int)}, None,
        "y_test has shape (4, 3) but y has (20, 2); every part needs the same labels"),
    "a 1-D y with task: multilabel": ({"y": np.arange(N) % 2}, "multilabel",
                                      "y has shape (20,); with task: multilabel targets are 0/1 per label, shape "
                                      "(N, C)"),
    "a multilabel training part with no label on": (
        {"y": np.zeros((N, 3), int)}, "multilabel",
        "y holds no 1: no training sample has any label on; a multilabel classifier needs positive labels"),
    "multilabel names of another count": ({"y": zero_one(2), "classes": np.array(["a", "b", "c"])}, None,
                                          "classes names 3 labels but y has 2; give one name per label column"),
    "a regression part of another width": (
        {"y": np.ones((N, 2)), "x_val": np.ones((4, 3)), "y_val": np.ones(4)}, None,
        "y_val has shape (4,) but y has (20, 2); every part needs the same targets"),
    "regression names of another count": ({"y": np.ones((N, 2)), "classes": np.array(["a", "b", "c"])}, None,
                                          "classes names 3 targets but y has 2; give one name per target column"),
    "no targets for the samples": ({"y": np.ones(0)}, None, "x has 20 samples but y has 0 labels"),
    "a single value as y": ({"y": np.float64(1.0)}, None, "y is a single value; it holds one target per sample"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_targets_are_one_line_naming_the_file_key_array_and_index(tmp_path, case):
    arrays, task, reason = BAD[case]
    with pytest.raises(SourceError) as raised:
        load_dataset(npz(tmp_path, **arrays), task=task)
    assert str(raised.value) == f"study.yaml: dataset.path: {tmp_path}/data.npz: {reason}"


def test_regression_statistics_come_from_the_training_split_alone(tmp_path):
    """Validation and test are carved from the given part (no parts given): neither counts; a constant target
    gets std 1, so standardising never divides by zero."""
    y = np.stack([np.arange(50) ** 2 * 1.0, np.full(50, 7.0)], axis=1)
    data = load_dataset(npz(tmp_path, x=np.ones((50, 3), np.float32), y=y))
    train = data.train.labels.double()
    assert len(data.val) and len(data.test) and len(train) < 50
    assert data.target_mean == pytest.approx((train[:, 0].mean().item(), 7.0))
    assert data.target_std == pytest.approx((train[:, 0].std().item(), 1.0))
    assert data.target_mean[0] != pytest.approx(y[:, 0].mean()), "the carved parts changed the mean"
    given = load_dataset(npz(tmp_path, x=np.ones((50, 3), np.float32), y=y, x_val=np.ones((5, 3)),
                             y_val=np.full((5, 2), 1e6)))
    assert given.target_mean[1] == pytest.approx(7.0) and given.target_std[1] == 1.0, "y_val does not count"
    assert isinstance(data.target_mean, tuple) and isinstance(data.target_std[0], float)
    classes = load_dataset(npz(tmp_path, y=np.arange(N) % 2))
    assert classes.target_mean == () and classes.target_std == ()


ENTRY = '''import torch


def regression(n=40, task_width=2):
    x = torch.linspace(0, 1, n * 3).reshape(n, 3)
    return {"x": x, "y": x[:, :task_width] * 10 + 1, "classes": ["price", "area"][:task_width]}


def counts(n=40):
    return {"x": torch.ones(n, 3), "y": torch.arange(n) % 5}
'''


def test_a_python_entry_returns_regression_targets(tmp_path):
    (tmp_path / "targets_entry.py").write_text(ENTRY)

    def entry(name: str) -> DataSource:
        return DataSource.parse({"type": "python", "entry": f"targets_entry:{name}"}, origin="study.yaml",
                                folder=tmp_path)

    data = load_dataset(entry("regression"))
    assert (data.task, data.task_reason, data.classes, data.num_classes) == \
        ("regression", "inferred: y is float", ("price", "area"), 2)
    assert data.train.labels.dtype == torch.float32 and data.train.labels.shape == (len(data.train), 2)
    assert len(data.target_mean) == 2 and data.target_mean[0] > 1
    counted = load_dataset(entry("counts"), task="regression")
    assert counted.task == "regression" and counted.train.labels.shape == (len(counted.train), 1)
    assert load_dataset(entry("counts")).task == "classification", "integers are inferred as classes"
    with pytest.raises(SourceError, match=re.escape("study.yaml: dataset.entry: targets_entry:counts: y has shape "
                                                    "(40,); with task: multilabel")):
        load_dataset(entry("counts"), task="multilabel")


def test_image_folders_and_builtins_stay_classification(tmp_path):
    write_images(tmp_path / "pets", {"cat": 6, "dog": 6})
    folder = DataSource.parse({"type": "image_folder", "path": "pets"}, origin="study.yaml", folder=tmp_path)
    with pytest.raises(SourceError) as raised:
        load_dataset(folder, tmp_path / "root", task="regression")
    assert str(raised.value) == ("study.yaml: task: image_folder pets is a classification dataset (labels are its "
                                 "folders); task: regression and multilabel need arrays or a python entry")
    images = load_dataset(folder, tmp_path / "root", task="classification")
    assert images.task == "classification" and images.train.labels.dtype == torch.int64
    with pytest.raises(DataError, match=r"^digits is a classification dataset \(labels are its classes\); task: "
                                        "regression and multilabel need arrays or a python entry$"):
        load_dataset("digits", task="multilabel")
    digits = load_dataset("digits", task="classification")
    assert digits is load_dataset("digits"), "one cached copy whether the task is stated or not"
    assert digits.facts.task == "classification" and digits.target_mean == ()


def test_the_task_is_a_data_fact_stored_with_the_study_only_when_not_classification(tmp_path):
    source = npz(tmp_path, y=np.linspace(0, 1, N))
    facts = load_dataset(source).facts
    assert (facts.task, facts.task_reason, facts.outputs) == ("regression", "inferred: y is float", "targets")
    stored = source.to_dict(facts)
    assert stored["task"] == "regression" and "task_reason" not in stored and "inferred" not in str(stored)
    classes = npz(tmp_path, y=np.arange(N) % 2)
    assert "task" not in classes.to_dict(load_dataset(classes).facts), "a classification study's record is as before"
    no_torch = ("import sys; from adamtune.data import DataFacts; "
                "f = DataFacts('', ('a',), (3,), 'features', (1, 1, 1), task='multilabel'); "
                "assert f.task == 'multilabel' and 'torch' not in sys.modules and 'numpy' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", no_torch], check=False).returncode == 0


@pytest.mark.slow  # runs the adamtune command
def test_check_says_the_task_and_how_it_was_decided(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x=rng.normal(size=(60, 4)).astype(np.float32),
             y=rng.normal(size=(60, 2)))
    study = write_study(tmp_path, "targets", dataset={"type": "arrays", "path": "data.npz"},
                        search_space=["adam", "batch", "mlp"], exclude=[])
    checked = adamtune("check", str(study), env={"ADAMTUNE_DATA": str(tmp_path / "cache")})
    assert checked.returncode == 0, checked.stderr
    assert "(features), 2 targets (y0, y1), fingerprint" in checked.stdout, checked.stdout
    assert "\n  task: regression (inferred: y is float)\n" in checked.stdout, checked.stdout
