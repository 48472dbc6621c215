"""Study files: the shipped ones are valid; each kind of bad input names the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from conftest import REPO, write_study
from adamtune.search_spaces import SpaceError
from adamtune.studies import StudyError, load_study_file


@pytest.mark.parametrize("path", sorted((REPO / "studies").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_studies_are_valid(path: Path):
    spec = load_study_file(path)
    assert spec.name == path.stem
    assert {"lr", "beta1", "beta2", "eps", "optimizer", "amsgrad", "scheduler", "dropout", "rotation"} <= set(spec.space.names)


def test_quickstart_is_the_articles_mlp_on_digits_without_flips():
    spec = load_study_file(REPO / "studies" / "digits_mlp.yaml")
    assert (spec.dataset, spec.model, spec.n_trials) == ("digits", "mlp", 20)
    assert "hflip" not in spec.space.names
    mnist = load_study_file(REPO / "studies" / "mnist_mlp.yaml")
    assert mnist.space["batch_size"].value == 64 and mnist.space["width"].value == 128 and mnist.epochs == 10


@pytest.mark.parametrize("kind,cls", [("tpe", optuna.samplers.TPESampler), ("random", optuna.samplers.RandomSampler),
                                      ("cmaes", optuna.samplers.CmaEsSampler), ("gp", optuna.samplers.GPSampler),
                                      ("qmc", optuna.samplers.QMCSampler)])
def test_every_sampler(tmp_path, kind, cls):
    assert isinstance(load_study_file(write_study(tmp_path, "s", sampler={"type": kind})).sampler_object(), cls)


@pytest.mark.parametrize("pruner,cls", [
    ({"type": "median"}, optuna.pruners.MedianPruner), ({"type": "hyperband"}, optuna.pruners.HyperbandPruner),
    ({"type": "successive_halving"}, optuna.pruners.SuccessiveHalvingPruner),
    ({"type": "percentile", "percentile": 25.0}, optuna.pruners.PercentilePruner),
    ({"type": "none"}, optuna.pruners.NopPruner), ({"type": "median", "patience": 2}, optuna.pruners.PatientPruner),
])
def test_every_pruner(tmp_path, pruner, cls):
    assert isinstance(load_study_file(write_study(tmp_path, "s", pruner=pruner)).pruner_object(), cls)


BAD_STUDIES = [
    ({"learning_rate": 0.1}, StudyError, "learning_rate", "unknown key"),
    ({"dataset": "imagenet"}, StudyError, "dataset", "must be one of digits"),
    ({"epochs": 0}, StudyError, "epochs", "integer >= 1"),
    ({"exclude": []}, SpaceError, "params.hflip", "not flip-invariant"),
    ({"search_space": ["adam", "adma"]}, SpaceError, "search_space[adma]", "unknown fragment"),
    ({"params": {"lr": {"low": 0.1, "high": 0.01}}}, SpaceError, "params.lr.low", "greater than high"),
    ({"params": {"lr": {"low": 0.0}}}, SpaceError, "params.lr.low", "log range needs low > 0"),
    ({"params": {"activation": {"choices": []}}}, SpaceError, "params.activation.choices", "non-empty list"),
    ({"params": {"activation": {"choices": ["relu", "gelu"]}}}, SpaceError, "params.activation", "'gelu' is invalid"),
    ({"params": {"gamma2": {"type": "float", "low": 0.1, "high": 0.2, "when": {"sched": "x"}}}},
     SpaceError, "gamma2.when.sched", "unknown parent"),
    ({"params": {"momentum": {"type": "float", "low": 0.1, "high": 0.2}}}, SpaceError, "params.momentum",
     "not a training setting"),
    ({"search_space": ["adam", "adam"]}, SpaceError, "params.optimizer", "duplicate parameter name"),
    ({"sampler": {"type": "tpe", "n_startup": 3}}, StudyError, "sampler.n_startup", "no option"),
    ({"sampler": {"type": "bayes"}}, StudyError, "sampler.type", "must be one of"),
    ({"pruner": {"type": "median", "patience": -1}}, StudyError, "pruner.patience", "integer >= 0"),
    ({"direction": "maximize"}, StudyError, "direction", "val_loss is to be minimized"),
]


@pytest.mark.parametrize("changes,error,key,reason", BAD_STUDIES, ids=[b[2] for b in BAD_STUDIES])
def test_bad_study_names_file_key_reason(tmp_path, changes, error, key, reason):
    path = write_study(tmp_path, "bad", **changes)
    with pytest.raises(error) as info:
        load_study_file(path)
    assert key in info.value.key, str(info.value)
    assert reason in info.value.reason
