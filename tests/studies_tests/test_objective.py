"""The objective on a real study: baseline first, user attributes, divergence ends a trial as pruned,
a --timeout stops the worker between epochs."""

from __future__ import annotations

import dataclasses

import optuna
import pytest
import torch

from adamtune.results import StudyView, full_curve
from adamtune.studies import create_or_join, load_study_file
from adamtune.studies._objective import Objective
from conftest import adamtune, write_study


def test_baseline_trial_is_pytorch_adam_defaults(tmp_path):
    spec = load_study_file(write_study(tmp_path, "b"))
    study, created = create_or_join(spec, optuna.storages.InMemoryStorage())
    assert created
    objective = Objective(spec, torch.device("cpu"))
    study.optimize(objective, n_trials=1)
    config = StudyView.of(study).trials[0].config
    assert study.trials[0].user_attrs["baseline"] is True
    assert (config["optimizer"], config["lr"], config["beta1"], config["eps"]) == ("adam", 1e-3, 0.9, 1e-8)
    assert config["beta2"] == pytest.approx(0.999, abs=1e-12)
    assert config["weight_decay"] == 0 and config["scheduler"] == "none" and config["amsgrad"] is False
    assert config["rotation"] == config["translate"] == config["random_erasing"] == config["random_crop"] == 0
    attrs = study.trials[0].user_attrs
    assert len(attrs["curve"]["train_loss"]) == 4 == len(attrs["curve"]["seconds"])
    assert "val_loss" not in attrs["curve"], "the objective's series is the intermediate values, not stored twice"
    reported = study.trials[0].intermediate_values
    assert full_curve(study.trials[0], "val_loss")["val_loss"] == [reported[epoch] for epoch in range(4)]
    assert StudyView.of(study).trials[0].val_loss == study.trials[0].value
    assert attrs["device"] == "cpu" and attrs["param_count"] > 0 and ":" in attrs["worker"]
    assert study.trials[0].intermediate_values.keys() == {0, 1, 2, 3}


def test_a_diverging_trial_is_pruned_with_its_reason_and_the_worker_goes_on(tmp_path):
    spec = load_study_file(write_study(tmp_path, "nan", baseline=False))
    study, _ = create_or_join(spec, optuna.storages.InMemoryStorage())
    objective = Objective(spec, torch.device("cpu"))
    good_data = objective.data

    def first_trial_diverges(trial):
        objective.data = dataclasses.replace(good_data, std=(0.0,)) if trial.number == 0 else good_data
        return objective(trial)

    study.optimize(first_trial_diverges, n_trials=2)
    first, second = study.trials
    assert first.state == optuna.trial.TrialState.PRUNED
    assert first.user_attrs["pruned_reason"].startswith("diverged: training loss became nan")
    assert second.state == optuna.trial.TrialState.COMPLETE


def test_a_per_batch_schedules_shape_is_in_the_trials_learning_rate_curve(tmp_path):
    """One-cycle over 4 epochs peaking at half-way: the recorded lr (each epoch's last batch's) rises, then falls."""
    params = {"scheduler": {"type": "fixed", "value": "onecycle"}, "onecycle_peak": {"type": "fixed", "value": 0.5},
              "lr": {"type": "fixed", "value": 1e-2}, "batch_size": {"type": "fixed", "value": 64},
              "patience": {"type": "fixed", "value": 0}}  # no early stop: all 4 epochs
    spec = load_study_file(write_study(tmp_path, "cycle", baseline=False, params=params,
                                       search_space=["adam", "regularization", "augmentation", "batch", "mlp"]))
    study, _ = create_or_join(spec, optuna.storages.InMemoryStorage())
    study.optimize(Objective(spec, torch.device("cpu")), n_trials=1)
    lr = StudyView.of(study).trials[0].curve["lr"]
    assert len(lr) == 4
    assert 1e-2 / 25 < lr[0] < lr[1] <= 1e-2, "rising towards the peak at 2 of 4 epochs"
    assert lr[1] > lr[2] > lr[3] and lr[3] < 1e-6, "annealed to lr / 25 / 1e4 by the last batch"


class PruneFrom(optuna.pruners.BasePruner):
    """Prunes every trial asked at epoch `step` or later: the pruner that once threw away finished runs."""

    def __init__(self, step: int) -> None:
        self.step = step

    def prune(self, study, trial) -> bool:
        return trial.last_step is not None and trial.last_step >= self.step


@pytest.mark.parametrize("packed", [False, True], ids=["solo", "packed"])
def test_the_last_epoch_completes_the_trial_and_is_never_pruned(tmp_path, packed):
    from adamtune.studies._packed import PackedWorker

    fixed = {"batch_size": {"type": "fixed", "value": 64}, "width": {"type": "fixed", "value": 32},
             "patience": {"type": "fixed", "value": 0}}  # no early stop: 3 epochs
    spec = load_study_file(write_study(tmp_path, f"last_{packed}", epochs=3, baseline=False, params=fixed,
                                       sampler={"type": "random"}))
    for step, state, epochs in ((2, optuna.trial.TrialState.COMPLETE, 3), (1, optuna.trial.TrialState.PRUNED, 2)):
        study, _ = create_or_join(spec, optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/last{step}.db"))
        study.pruner = PruneFrom(step)
        objective = Objective(spec, torch.device("cpu"))
        if packed:
            PackedWorker(study, objective, spec, 2, 2, lambda *_: None).run(None)
        else:
            study.optimize(objective, n_trials=2)
        assert [(t.state, len(t.intermediate_values)) for t in study.trials] == [(state, epochs)] * 2, \
            f"pruned from epoch {step} of 3"


def test_a_run_that_stops_early_is_not_pruned_after_the_epoch_it_stops_at(tmp_path):
    """Early stopping ends a run before `epochs`: the epoch it stops after is its last, and the pruner is not
    asked about it (solo and packed)."""
    from adamtune.studies._packed import PackedWorker

    class Asked(optuna.pruners.BasePruner):
        steps: set = set()

        def prune(self, study, trial) -> bool:
            self.steps.add((trial.number, trial.last_step))
            return False

    fixed = {"batch_size": {"type": "fixed", "value": 64}, "width": {"type": "fixed", "value": 32},
             "lr": {"type": "fixed", "value": 2e-2}, "patience": {"type": "fixed", "value": 1}}
    spec = load_study_file(write_study(tmp_path, "early", epochs=40, baseline=False, params=fixed,
                                       sampler={"type": "random"}))
    for packed in (False, True):
        study, _ = create_or_join(spec, optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/early{packed}.db"))
        study.pruner = pruner = Asked()
        pruner.steps = set()
        objective = Objective(spec, torch.device("cpu"))
        if packed:
            PackedWorker(study, objective, spec, 2, 2, lambda *_: None).run(None)
        else:
            study.optimize(objective, n_trials=2)
        for trial in study.trials:
            last = max(trial.intermediate_values)
            assert trial.state == optuna.trial.TrialState.COMPLETE and last < 39, "stopped early, complete"
            assert (trial.number, last - 1) in pruner.steps and (trial.number, last) not in pruner.steps


def test_a_solo_trials_values_reach_the_store_all_at_once(tmp_path, storage_url, study_name, monkeypatch):
    """While a solo worker draws a trial's values the store holds none of them, then all, in one transaction:
    a server that goes down in between leaves a stored trial with all its values or none."""
    import sqlalchemy

    from adamtune import api
    from adamtune.studies._spec import StudySpec

    engine = sqlalchemy.create_engine(storage_url)
    stored_while_drawing: list[int] = []
    real = StudySpec.sampler_object

    class Watching(optuna.samplers.RandomSampler):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def sample_independent(self, study, trial, name, distribution):
            with engine.connect() as conn:
                stored_while_drawing.append(conn.execute(sqlalchemy.text(
                    "SELECT count(*) FROM trial_params WHERE trial_id = :t"), {"t": trial._trial_id}).scalar_one())
            return self.inner.sample_independent(study, trial, name, distribution)

    monkeypatch.setattr(StudySpec, "sampler_object", lambda self: Watching(real(self)))
    path = write_study(tmp_path, study_name, epochs=1, n_trials=2, baseline=False, sampler={"type": "random"},
                       pruner={"type": "none"})
    api.run(path, storage=storage_url)
    engine.dispose()
    trials = optuna.load_study(study_name=study_name, storage=storage_url).trials
    assert len(trials) == 2 and all(len(t.params) >= 10 for t in trials)
    assert len(stored_while_drawing) >= 20 and set(stored_while_drawing) == {0}


@pytest.mark.slow  # a CLI process
def test_timeout_stops_the_worker_between_epochs_and_queues_the_trial(tmp_path):
    """A 10,000-epoch CNN trial (hours on any machine) and a 1 s timeout: the worker stops after an epoch,
    not after the trial."""
    study = write_study(tmp_path, "late", model="cnn", epochs=10_000, n_trials=2, search_space=["adam"],
                        params={"batch_size": {"type": "fixed", "value": 16}, "width": {"type": "fixed", "value": 32}},
                        exclude=[], sampler={"type": "random"}, pruner={"type": "none"})
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = adamtune("run", str(study), "--storage", url, "--timeout", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "the timeout passed during trial 0" in result.stderr
    assert "Traceback" not in result.stderr and "failed with" not in result.stderr, "one line, not Optuna's crash log"
    trials = optuna.load_study(study_name="late", storage=url).trials
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert len(trials[0].intermediate_values) < 10_000, "the worker stopped mid-trial, not at its end"
