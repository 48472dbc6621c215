"""A packed worker (`run --pack K`): each packed trial is a whole Optuna trial, a slot that ends is refilled at
once, the study-wide budget is counted exactly, and `train --validate` reproduces a packed trial."""

from __future__ import annotations

import json
import logging

import optuna
import pytest
from optuna.trial import TrialState

from adamtune import api
from conftest import adamtune, study_view, write_study

pytestmark = pytest.mark.slow  # runs the adamtune command or trains studies

ONE_STRUCTURE = {"search_space": ["adam", "regularization"], "exclude": ["patience"],
                 "params": {"batch_size": {"type": "fixed", "value": 64}, "width": {"type": "fixed", "value": 32}},
                 "sampler": {"type": "random"}}


def test_ended_slots_are_refilled_at_once_and_the_budget_is_exact(tmp_path):
    # Percentile 10 after one complete trial: most later trials are pruned early, each at its own epoch.
    path = write_study(tmp_path, "packed", epochs=6, n_trials=8, pack=3, **ONE_STRUCTURE,
                       pruner={"type": "percentile", "percentile": 10.0, "n_startup_trials": 1, "n_warmup_steps": 0})
    url = f"sqlite:///{tmp_path / 'p.db'}"
    summary = api.run(path, storage=url)

    trials = optuna.load_study(study_name="packed", storage=url).get_trials()
    assert summary.ran == 8 and len(trials) == 8, "one worker stops at the budget: no trial asked beyond it"
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and all(len(t.intermediate_values) < 6 for t in pruned)
    assert all(t.user_attrs["packed"] == 3 for t in trials)
    refilled = [(p.number, t.number) for p in pruned for t in trials for o in trials
                if p.datetime_complete <= t.datetime_start < o.datetime_complete and o.number < t.number]
    assert refilled, "a trial started in a pruned trial's slot while an older trial still trained"
    view = study_view(url, "packed")
    for record in view.trials:
        assert record.config["seed"] == record.number, "each trial keeps its own seed (study seed + number)"
        assert len(record.curve["train_loss"]) == record.epochs, "its curve is complete"


def test_train_validate_reproduces_a_packed_trial(tmp_path):
    path = write_study(tmp_path, "packed_train", epochs=3, n_trials=3, pack=3, **ONE_STRUCTURE,
                       pruner={"type": "none"})
    url = f"sqlite:///{tmp_path / 'p.db'}"
    api.run(path, storage=url)
    exported = api.export("packed_train", url)
    assert exported["packed"] == 3
    out = tmp_path / "best.json"
    out.write_text(json.dumps(exported))
    metrics = api.train(out, validate=True)
    assert metrics["best_epoch"] == exported["metrics"]["best_epoch"]
    assert metrics["val_loss"] == pytest.approx(exported["metrics"]["val_loss"], rel=1e-5)


@pytest.mark.parametrize("value,shown", [("0", "0"), ("abc", "'abc'"), ("257", "257"), ("-3", "-3")])
def test_a_bad_pack_size_is_one_line_and_exit_2(tmp_path, value, shown):
    path = write_study(tmp_path, "bad_pack")
    ran = adamtune("run", str(path), "--storage", f"sqlite:///{tmp_path / 'p.db'}", "--pack", value)
    assert ran.returncode == 2
    assert ran.stderr.strip().splitlines() == [f"adamtune: error: {path}: --pack: trials trained at once: auto or an "
                                               f"integer from 1 to 256, got {shown}"]
    assert not (tmp_path / "p.db").exists(), "refused before the store is touched"


def test_a_bad_pack_key_names_the_file_and_key(tmp_path):
    path = write_study(tmp_path, "bad_pack_key", pack=0.5)
    ran = adamtune("check", str(path))
    assert ran.returncode == 2
    assert ran.stderr.strip().splitlines() == [f"adamtune: error: {path}: pack: trials trained at once: auto or an "
                                               "integer from 1 to 256, got 0.5"]


UNPACKABLE = '''
from torch import nn


def build(input_shape, num_classes, params):
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.Dropout2d(0.1), nn.Flatten(), nn.Linear(4 * 6 * 6, num_classes))
'''


@pytest.mark.parametrize("pack", [{"pack": 4}, {}], ids=["pack 4", "auto, the default"])
def test_a_model_that_cannot_be_packed_falls_back_to_one_trial_at_a_time(tmp_path, caplog, pack):
    (tmp_path / "channel_nets.py").write_text(UNPACKABLE)
    path = write_study(tmp_path, "unpackable", model={"entry": "channel_nets:build"}, search_space=["adam"],
                       params={}, exclude=[], n_trials=8, epochs=1, **pack)
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with caplog.at_level(logging.WARNING, logger="adamtune"):
        api.run(path, storage=url)
    said = [r.getMessage() for r in caplog.records if "cannot be packed" in r.getMessage()]
    assert said == ["model channel_nets:build cannot be packed: 1 is a Dropout2d; only nn.Dropout masks can be "
                    "drawn per trial; this worker trains one trial at a time"]
    trials = optuna.load_study(study_name="unpackable", storage=url).get_trials()
    assert len(trials) == 8 and {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert not any("packed" in t.user_attrs for t in trials)


def test_a_timeout_fails_every_packed_trial_and_their_retries_resume(tmp_path):
    path = write_study(tmp_path, "packed_timeout", epochs=5, n_trials=3, pack=3, **ONE_STRUCTURE,
                       pruner={"type": "none"})
    url = f"sqlite:///{tmp_path / 'p.db'}"
    # The deadline has passed by the end of the first epoch on any machine: the worker stops there.
    api.run(path, storage=url, timeout=0.001)
    stopped = optuna.load_study(study_name="packed_timeout", storage=url).get_trials()
    assert sorted(t.state for t in stopped) == [TrialState.FAIL] * 3 + [TrialState.WAITING] * 3
    trained = {t.number: len(t.intermediate_values) for t in stopped if t.state == TrialState.FAIL}

    api.run(path, storage=url)
    view = study_view(url, "packed_timeout")
    retries = [r for r in view.trials if r.retry_of is not None]
    assert sorted(r.retry_of for r in retries) == sorted(trained)
    for r in retries:
        assert r.state == "complete" and r.resumed_epochs == trained[r.retry_of] > 0, "resumed where it stopped"
        assert len(r.curve["train_loss"]) == 5


def test_a_packed_study_asks_groups_of_trials_that_share_only_what_the_pack_cannot_mix(tmp_path):
    """`--pack 4`, 16 trials: on a CPU a group's trials share batch size and width, the first trial's;
    everything else, activation included, is sampled per trial; the next group's first trial is drawn afresh."""
    path = write_study(tmp_path, "packed_groups", epochs=1, n_trials=16, pruner={"type": "none"},
                       sampler={"type": "random"}, pack=4)
    url = f"sqlite:///{tmp_path / 'p.db'}"
    api.run(path, storage=url)
    trials = sorted(optuna.load_study(study_name="packed_groups", storage=url).get_trials(), key=lambda t: t.number)
    assert all(t.user_attrs["packed"] == 4 for t in trials)
    shared = [(t.params["batch_size"], t.params["width"]) for t in trials]
    groups = [shared[i:i + 4] for i in range(0, 16, 4)]
    assert all(group == [group[0]] * 4 for group in groups)
    assert len({group[0] for group in groups}) > 1, "each group's first trial is drawn afresh"
    assert len({t.params["activation"] for t in trials}) > 1 and len({t.params["lr"] for t in trials}) == 16


def test_by_default_on_a_cpu_a_study_trains_one_trial_at_a_time_and_says_why(tmp_path, caplog):
    path = write_study(tmp_path, "auto_on_cpu", epochs=1, n_trials=8, pruner={"type": "none"})
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with caplog.at_level(logging.WARNING, logger="adamtune"):
        api.run(path, storage=url, device="cpu")
    said = [r.getMessage() for r in caplog.records if "pack: auto" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("pack: auto trains one trial at a time (on a CPU, packs of ")
    trials = optuna.load_study(study_name="auto_on_cpu", storage=url).get_trials()
    assert len(trials) == 8 and not any("packed" in t.user_attrs for t in trials)


def test_groups_and_trials_at_once_grow_with_the_study_up_to_the_pack_size():
    from adamtune.studies._packed import GROUP_GROWTH, GROUP_START, growing_size

    assert growing_size(0, 64) == GROUP_START, "a young study is searched a few trials at a time"
    assert growing_size(GROUP_GROWTH * 10, 64) == 10
    assert growing_size(10_000, 64) == 64 and growing_size(10_000, 3) == 3
