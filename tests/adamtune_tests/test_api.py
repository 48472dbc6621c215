"""The Python API the command line is thin over: plain objects back, adamtune errors raised (never printed),
and nothing heavy imported before it is needed."""

from __future__ import annotations

import json
import subprocess
import sys

import optuna
import pytest

import adamtune
from adamtune.errors import EXIT_INPUT, EXIT_RUNTIME, InputError, NoCompleteTrial, StorageError, StudyNotFound
from adamtune.results import TrialRecord
from conftest import REPO, write_study

pytestmark = pytest.mark.slow  # starts processes or trains a study


def test_run_best_export_train_from_python(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'api.db'}"
    study_file = write_study(tmp_path, "api", n_trials=3, epochs=2)
    summary = adamtune.run(study_file, storage=url, device="cpu", artifacts=str(tmp_path / "artifacts"))
    assert (summary.created, summary.ran) == (True, 3)
    view = adamtune.study("api", storage=url)
    assert sum(view.counts.values()) == 3 and view.baseline is not None
    best = adamtune.best("api", storage=url)
    assert isinstance(best, TrialRecord) and best.value == min(t.value for t in view.complete)
    exported = adamtune.export("api", storage=url, out=tmp_path / "best.json")
    assert (exported["trial"], exported["config"]["lr"]) == (best.number, best.config["lr"])
    assert json.loads((tmp_path / "best.json").read_text()) == exported, "out= writes what it returns"
    metrics = adamtune.train(exported, validate=True, device="cpu")  # the mapping itself, no file needed
    assert metrics["val_loss"] == pytest.approx(best.value, rel=1e-5)
    assert adamtune.train(tmp_path / "best.json", validate=True, device="cpu") == metrics, "or the file"
    baseline = adamtune.export("api", storage=url, trial=0)
    assert baseline["trial"] == 0 and baseline["config"]["lr"] == 1e-3
    assert capsys.readouterr().out == "", "the API returns results; it prints nothing"


def test_dir_lists_the_api():
    """`dir(adamtune)` (and a notebook's completion) shows the functions, which are imported on first use."""
    assert {"run", "study", "best", "export", "train", "load_model", "predict", "check", "report"} <= set(dir(adamtune))


def test_errors_are_raised_with_the_exit_code_their_class_carries(tmp_path):
    url = f"sqlite:///{tmp_path / 'none.db'}"
    with pytest.raises(StudyNotFound, match="run `adamtune studies`") as missing:
        adamtune.best("nope", storage=url)
    assert missing.value.exit_code == EXIT_INPUT
    with pytest.raises(InputError, match="study file not found"):
        adamtune.check(tmp_path / "missing.yaml")
    optuna.create_study(study_name="empty", storage=url)
    with pytest.raises(NoCompleteTrial, match="'empty' has no complete trial yet") as empty:
        adamtune.export("empty", storage=url)
    assert empty.value.exit_code == EXIT_INPUT
    with pytest.raises(StorageError) as unreachable:
        adamtune.best("x", storage="postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    assert unreachable.value.exit_code == EXIT_RUNTIME and "secret" not in str(unreachable.value)


def test_help_and_check_do_not_import_torch_or_optuna():
    code = ("import sys, adamtune.cli\n"
            "adamtune.cli._parser().format_help()\n"
            "assert 'torch' not in sys.modules and 'optuna' not in sys.modules, 'help'\n"
            f"adamtune.check({str(REPO / 'studies' / 'digits_mlp.yaml')!r})\n"
            "assert 'torch' not in sys.modules, 'check'\n")
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
