"""Each task through the whole service: run (solo and packed, SQLite and PostgreSQL) -> export -> `train
--validate` from another directory reproducing the trial's objective -> `train` reporting the task's test
metrics; the user's own metric; and the bad inputs of tasks and metrics, each one line, exit 2, nothing stored."""

from __future__ import annotations

import json
import uuid

import numpy as np
import optuna
import pytest

from conftest import adamtune, postgres_url, write_study

pytestmark = pytest.mark.slow  # runs the adamtune command

REGRESSION = {"dataset": {"type": "arrays", "path": "data.npz"}, "objective": "val_rmse",
              "search_space": ["adam", "batch", "mlp", "regression_loss"], "exclude": [],
              "params": {"batch_size": {"choices": [32, 64]}, "width": {"choices": [16, 32], "default": 32}}}
MULTILABEL = {"dataset": {"type": "arrays", "path": "data.npz"}, "objective": "val_macro_f1",
              "search_space": ["adam", "batch", "class_weights"], "exclude": [],
              "params": {"batch_size": {"choices": [32, 64]}}}
METRIC_MODULE = '''
import numpy as np


def worst_label_f1(predictions, targets):
    """The F1 of the hardest label: a user's own multilabel metric."""
    from sklearn.metrics import f1_score
    return float(f1_score(targets.astype(int), (predictions >= 0.5).astype(int), average=None,
                          zero_division=0).min())


def raises(predictions, targets):
    raise RuntimeError("no such column")


def not_a_number(predictions, targets):
    return [1.0, 2.0]
'''


def write_regression(folder) -> None:
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    np.savez(folder / "data.npz", x=x[:300].astype(np.float32), y=y[:300], x_test=x[300:].astype(np.float32),
             y_test=y[300:])


def write_multilabel(folder) -> None:
    from sklearn.datasets import make_multilabel_classification

    x, y = make_multilabel_classification(n_samples=500, n_features=20, n_classes=4, random_state=0)
    np.savez(folder / "data.npz", x=x[:400].astype(np.float32), y=y[:400], x_test=x[400:].astype(np.float32),
             y_test=y[400:], classes=np.array(["a", "b", "c", "d"]))


@pytest.mark.parametrize("task, pack, store", [  # each task solo and packed, on both stores
    ("regression", 1, "sqlite"), pytest.param("regression", 3, "postgres", marks=pytest.mark.postgres),
    pytest.param("multilabel", 1, "postgres", marks=pytest.mark.postgres), ("multilabel", 3, "sqlite")])
def test_a_task_runs_exports_and_trains_from_another_directory(tmp_path, task, pack, store):
    storage_url = f"sqlite:///{tmp_path / 'studies.db'}" if store == "sqlite" else postgres_url()
    study_name = f"t_{uuid.uuid4().hex[:10]}"
    try:
        run_export_and_train(tmp_path, task, pack, storage_url, study_name)
    finally:
        if study_name in optuna.study.get_all_study_names(storage_url):
            optuna.delete_study(study_name=study_name, storage=storage_url)


def run_export_and_train(tmp_path, task: str, pack: int, storage_url: str, study_name: str) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir(), elsewhere.mkdir()
    (write_regression if task == "regression" else write_multilabel)(project)
    keys = REGRESSION if task == "regression" else MULTILABEL
    study = write_study(project, study_name, epochs=3, n_trials=4, pack=pack, **keys)
    checked = adamtune("check", str(study))
    assert checked.returncode == 0, checked.stderr
    assert f"task: {task}" in checked.stdout + checked.stderr
    ran = adamtune("run", str(study), "--storage", storage_url, "--device", "cpu")
    assert ran.returncode == 0, ran.stderr
    loaded = optuna.load_study(study_name=study_name, storage=storage_url)
    assert loaded.direction.name == ("MINIMIZE" if task == "regression" else "MAXIMIZE")
    assert loaded.user_attrs["spec"]["task"] == task
    done = [t for t in loaded.trials if t.state.name == "COMPLETE"]
    assert done and all(t.value is not None and np.isfinite(t.value) for t in done)

    best = project / "best.json"
    assert adamtune("export", study_name, "-o", str(best), "--storage", storage_url).returncode == 0
    exported = json.loads(best.read_text())
    objective = keys["objective"]
    assert exported["config"]["task"] == task and exported["metrics"]["objective"] == objective
    assert exported["config"]["loss"] in (("mse", "l1", "huber") if task == "regression" else ("bce",))

    validated = adamtune("train", str(best), "--validate", "--out", "v", cwd=elsewhere)
    assert validated.returncode == 0, validated.stderr
    again = json.loads((elsewhere / "v" / "metrics.json").read_text())
    assert again[objective] == pytest.approx(exported["value"], rel=1e-5), "train --validate reproduces the trial"

    trained = adamtune("train", str(best), "--out", "m", cwd=elsewhere)
    assert trained.returncode == 0, trained.stderr
    test = json.loads((elsewhere / "m" / "metrics.json").read_text())
    expected = {"test_rmse", "test_mae", "test_r2"} if task == "regression" else \
        {"test_micro_f1", "test_macro_f1", "test_subset_accuracy"}
    assert expected <= set(test) and "test_accuracy" not in test


def test_the_users_metric_judges_the_study_and_train_validate_computes_it_again(tmp_path):
    write_multilabel(tmp_path)
    (tmp_path / "my_metrics.py").write_text(METRIC_MODULE)
    study = write_study(tmp_path, "own_metric", epochs=2, n_trials=3, pack=1,
                        **{**MULTILABEL, "objective": {"entry": "my_metrics:worst_label_f1", "direction": "maximize"}})
    url = f"sqlite:///{tmp_path / 's.db'}"
    ran = adamtune("run", str(study), "--storage", url)
    assert ran.returncode == 0, ran.stderr
    loaded = optuna.load_study(study_name="own_metric", storage=url)
    assert loaded.direction.name == "MAXIMIZE" and loaded.user_attrs["spec"]["objective"] == "val_worst_label_f1"
    assert adamtune("export", "own_metric", "-o", str(tmp_path / "best.json"), "--storage", url).returncode == 0
    exported = json.loads((tmp_path / "best.json").read_text())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    validated = adamtune("train", str(tmp_path / "best.json"), "--validate", "--out", "v", cwd=elsewhere)
    assert validated.returncode == 0, validated.stderr
    again = json.loads((elsewhere / "v" / "metrics.json").read_text())
    assert again["val_worst_label_f1"] == pytest.approx(exported["value"], rel=1e-6)


@pytest.mark.parametrize("entry, reason", [("my_metrics:raises", "raised RuntimeError: no such column"),
                                           ("my_metrics:not_a_number", "a metric returns one number")])
@pytest.mark.parametrize("pack", [1, 2])
def test_a_failing_user_metric_fails_the_trial_with_its_reason_once(tmp_path, entry, reason, pack):
    write_multilabel(tmp_path)
    (tmp_path / "my_metrics.py").write_text(METRIC_MODULE)
    study = write_study(tmp_path, "bad_metric", epochs=2, n_trials=3, pack=pack,
                        **{**MULTILABEL, "objective": {"entry": entry, "direction": "maximize"}})
    url = f"sqlite:///{tmp_path / 's.db'}"
    ran = adamtune("run", str(study), "--storage", url)
    assert ran.returncode == 2
    last = ran.stderr.strip().splitlines()[-1]
    assert last.startswith("adamtune: error: ") and "objective.entry" in last and reason in last, ran.stderr
    trials = optuna.load_study(study_name="bad_metric", storage=url).trials
    assert trials and all(t.state.name == "FAIL" for t in trials)
    assert all(reason in t.user_attrs.get("fail_reason", "") for t in trials)
    assert len(trials) == pack, "failed once, not retried"


BAD = [
    # (what the arrays are, study keys, the key named, a piece of the reason)
    ("float", {"task": "classification"}, "dataset", "not a class label"),
    ("nan", {}, "dataset", "y[7] = nan is not a finite number"),
    ("multilabel_2", {"task": "multilabel"}, "dataset", "0 or 1"),
    ("float", {"objective": "val_accuracy"}, "objective", "accuracy does not judge regression"),
    ("ten_classes", {"objective": "val_auroc"}, "objective", "auroc_ovr"),
    ("float", {"objective": "val_nonsense"}, "objective", "val_ and a metric (loss, accuracy"),
    ("float", {"objective": {"entry": "missing_module:f", "direction": "minimize"}}, "objective.entry", ""),
    ("float", {"task": "regression", "dataset": "digits"}, "task", "classification dataset"),
    ("float", {"search_space": ["adam", "regularization"]}, "params.label_smoothing", "exclude"),
]


@pytest.mark.parametrize("arrays, keys, key, reason", BAD, ids=[f"{b[0]}-{b[2]}" for b in BAD])
def test_bad_task_and_metric_input_is_one_line_exit_2_and_stores_nothing(tmp_path, arrays, keys, key, reason):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = {"float": rng.normal(size=200) + 0.5, "nan": np.where(np.arange(200) == 7, np.nan, rng.normal(size=200)),
         "multilabel_2": rng.integers(0, 3, (200, 3)), "ten_classes": np.arange(200) % 10}[arrays]
    np.savez(tmp_path / "data.npz", x=x, y=y)
    study = write_study(tmp_path, "bad", **{"dataset": {"type": "arrays", "path": "data.npz"},
                                            "search_space": ["adam"], "exclude": [], "params": {}, **keys})
    url = f"sqlite:///{tmp_path / 's.db'}"
    ran = adamtune("run", str(study), "--storage", url)
    assert ran.returncode == 2, ran.stderr
    line = ran.stderr.strip()
    assert len(line.splitlines()) == 1 and f": {key}" in line and reason in line, line
    assert not (tmp_path / "s.db").exists() or not optuna.study.get_all_study_names(url)
