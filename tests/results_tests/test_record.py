"""The one trial record: new trials store each fact once, and trials written by adamtune 0.1 (which stored
params, config, summary and metrics as user attrs too) read back exactly as 0.1 exported them."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from adamtune.results import StudyView
from adamtune.storage import Attr
from adamtune.studies import export_trial, load_study_file, run_study
from adamtune.training import TrainConfig
from conftest import write_study

V0_1 = Path(__file__).parent / "data" / "v0_1_study.json"  # dumped from a real adamtune 0.1 study (3 trials)
DERIVED_NOW = {"params", "config", "summary", "val_loss", "val_accuracy", "epochs_trained"}


def test_new_trials_store_each_fact_once(tmp_path):
    spec = load_study_file(write_study(tmp_path, "once", n_trials=2, epochs=2))
    study = run_study(spec, f"sqlite:///{tmp_path / 'once.db'}", device="cpu", progress=False).study
    written = {k for t in study.trials for k in t.user_attrs}
    assert written <= {v for k, v in vars(Attr).items() if not k.startswith("_")}
    assert not written & DERIVED_NOW, "sampled values live in Optuna's params; the rest is derived when read"
    view = StudyView.of(study)
    for t, record in zip(study.trials, view.trials, strict=True):
        assert record.config["lr"] == t.params["lr"] and record.config["seed"] == spec.seed + t.number
        assert "val_loss" not in t.user_attrs[Attr.CURVE], "the objective's curve is the intermediate values"
        assert record.val_loss == t.value == min(t.intermediate_values.values())
        assert record.val_accuracy == t.user_attrs[Attr.CURVE]["val_accuracy"][record.best_epoch]
        assert record.summary.startswith(("Adam lr=", "AdamW lr="))


@pytest.fixture
def v0_1_study(tmp_path):
    dump = json.loads(V0_1.read_text())
    study = optuna.create_study(study_name="v01", storage=f"sqlite:///{tmp_path / 'v01.db'}",
                                direction=dump["direction"].lower())
    for key, value in dump["study_user_attrs"].items():
        study.set_user_attr(key, value)
    for t in dump["trials"]:
        study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState[t["state"]], value=t["value"], params=t["params"],
            distributions={k: optuna.distributions.json_to_distribution(d) for k, d in t["distributions"].items()},
            user_attrs=t["user_attrs"], intermediate_values={int(k): v for k, v in t["intermediate_values"].items()}))
    return study, dump["trials"]


def test_trials_written_by_adamtune_0_1_read_as_they_were_exported(v0_1_study):
    study, old = v0_1_study
    view = StudyView.of(study)
    assert [r.number for r in view.trials] == [t["number"] for t in old]
    for record, t in zip(view.trials, old, strict=True):
        attrs = t["user_attrs"]
        # Settings added since 0.1 (the per-batch schedules) appear at their defaults, which train as 0.1 did.
        now = TrainConfig.from_dict(attrs["config"]).to_dict()
        assert record.config == now and {k: now[k] for k in attrs["config"]} == attrs["config"]
        assert record.params == pytest.approx(attrs["params"])
        assert record.summary == attrs["summary"]
        assert (record.val_loss, record.val_accuracy) == (attrs["val_loss"], attrs["val_accuracy"])
        exported = {k: v for k, v in export_trial(view, record).items() if k != "versions"}
        assert exported["config"] == TrainConfig.from_dict(t["export"]["config"]).to_dict()
        assert exported["trial"] == t["export"]["trial"]
        assert exported["metrics"] == {"objective": "val_loss", **t["export"]["metrics"]}  # which one it names
        assert exported["value"] == t["export"]["value"]
        assert exported["params"] == pytest.approx(t["export"]["params"])
