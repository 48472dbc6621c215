"""Study files: the shipped ones are valid; each kind of bad input names the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from adamtune.search_spaces import SpaceError
from adamtune.studies import StudyError, load_study_file
from conftest import REPO, write_study


@pytest.mark.parametrize("path", sorted((REPO / "studies").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_studies_are_valid(path: Path):
    spec = load_study_file(path)
    assert spec.name == path.stem
    names = {"lr", "beta1", "beta2", "eps", "optimizer", "amsgrad", "scheduler", "dropout", "rotation"}
    assert names <= set(spec.space.names)


def test_quickstart_is_the_articles_mlp_on_digits_without_flips():
    spec = load_study_file(REPO / "studies" / "digits_mlp.yaml")
    assert (spec.dataset, spec.model, spec.n_trials) == ("digits", "mlp", 20)
    assert "hflip" not in spec.space.names
    mnist = load_study_file(REPO / "studies" / "mnist_mlp.yaml")
    assert mnist.space["batch_size"].value == 64 and mnist.space["width"].value == 128 and mnist.epochs == 10


def baseline_config(spec):
    """The training config of the study's baseline trial, as the objective derives it."""
    study = optuna.create_study()
    study.enqueue_trial(spec.space.baseline())
    return spec.config_for(spec.space.sample(study.ask()), seed=spec.seed)


def test_mnist_baseline_is_the_articles_setting_with_its_decay_every_100_batches():
    config = baseline_config(load_study_file(REPO / "studies" / "mnist_mlp.yaml"))
    assert (config.scheduler, config.decay_every, config.decay_rate) == ("batch_exponential", 100, 0.98)
    assert (config.optimizer, config.lr, config.beta1, config.eps, config.weight_decay) == ("adam", 1e-3, 0.9, 1e-8, 0)
    assert (config.batch_size, config.width, config.epochs, config.warmup_steps) == (64, 128, 10, 0)
    quickstart = baseline_config(load_study_file(REPO / "studies" / "digits_mlp.yaml"))
    assert quickstart.scheduler == "none" and quickstart.warmup_epochs == quickstart.warmup_steps == 0, \
        "the schedule fragment's own baseline keeps lr constant"


def test_every_schedule_the_fragment_samples_is_a_valid_training_config(tmp_path):
    spec = load_study_file(write_study(tmp_path, "schedules"))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    schedulers = set()
    for _ in range(80):
        config = spec.config_for(spec.space.sample(study.ask()), seed=0)  # raises ConfigError on a bad mix
        schedulers.add(config.scheduler)
    assert {"batch_exponential", "onecycle", "batch_cosine"} <= schedulers


@pytest.mark.parametrize("kind,cls", [("tpe", optuna.samplers.TPESampler), ("random", optuna.samplers.RandomSampler),
                                      ("cmaes", optuna.samplers.CmaEsSampler), ("gp", optuna.samplers.GPSampler),
                                      ("qmc", optuna.samplers.QMCSampler)])
def test_every_sampler(tmp_path, kind, cls):
    sampler = load_study_file(write_study(tmp_path, "s", sampler={"type": kind})).sampler_object()
    assert isinstance(sampler.build(0), cls)  # built afresh for each trial, with the trial's seed


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
    ({"epochs": 0}, StudyError, "epochs", "an integer from 1 to 10000"),
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
    # a grace period shorter than two beats would fail a live, busy worker's trial as stale
    ({"heartbeat": {"interval": 10, "grace_period": 15}}, StudyError, "heartbeat.grace_period",
     "at least twice the interval"),
]


@pytest.mark.parametrize("changes,error,key,reason", BAD_STUDIES, ids=[b[2] for b in BAD_STUDIES])
def test_bad_study_names_file_key_reason(tmp_path, changes, error, key, reason):
    path = write_study(tmp_path, "bad", **changes)
    with pytest.raises(error) as info:
        load_study_file(path)
    assert key in info.value.key, str(info.value)
    assert reason in info.value.reason


def _ask(study, spec) -> tuple:
    """One trial as a worker asks it: its sampled settings (told a value the settings decide)."""
    trial = study.ask()
    values = spec.space.sample(trial)
    study.tell(trial, sum(float(v) for v in values.values() if isinstance(v, (int, float))) % 1)
    return tuple(sorted(values.items()))


@pytest.mark.parametrize("kind", ["random", "tpe", "cmaes", "qmc"])
def test_workers_and_restarted_workers_never_repeat_each_others_settings(tmp_path, storage_url, study_name, kind):
    """Each worker builds its own sampler from the study file: three workers asking in turn, then a fourth
    started later (a restarted worker), draw distinct settings; the start-up trials are random draws."""
    spec = load_study_file(write_study(tmp_path, study_name, sampler={"type": kind}))
    optuna.create_study(storage=storage_url, study_name=study_name)
    workers = [optuna.load_study(study_name=study_name, storage=storage_url, sampler=spec.sampler_object())
               for _ in range(3)]
    drawn = [_ask(worker, spec) for _ in range(4) for worker in workers]
    restarted = optuna.load_study(study_name=study_name, storage=storage_url, sampler=spec.sampler_object())
    drawn += [_ask(restarted, spec) for _ in range(3)]
    assert len(set(drawn)) == len(drawn) == 15


@pytest.mark.parametrize("kind", ["random", "tpe", "qmc"])
def test_one_worker_with_one_seed_draws_the_same_trials(tmp_path, storage_url, study_name, kind):
    spec = load_study_file(write_study(tmp_path, study_name, sampler={"type": kind, **(
        {"n_startup_trials": 3} if kind == "tpe" else {})}))
    runs = []
    for name in (study_name, f"{study_name}_again"):
        study = optuna.create_study(storage=storage_url, study_name=name, sampler=spec.sampler_object())
        runs.append([_ask(study, spec) for _ in range(6)])  # TPE: past its 3 random start-up trials
    optuna.delete_study(study_name=f"{study_name}_again", storage=storage_url)
    assert runs[0] == runs[1]
    other = load_study_file(write_study(tmp_path, study_name, seed=1, sampler={"type": kind}))
    study = optuna.create_study(sampler=other.sampler_object())
    assert [_ask(study, other) for _ in range(6)] != runs[0], "another seed, other trials"


@pytest.mark.parametrize("changes,key,reason", [
    ({"epochs": 10001}, "epochs", "an integer from 1 to 10000, got 10001"),
    ({"seed": 2**70}, "seed", f"an integer from 0 to {2**32 - 1}"),  # Optuna's samplers seed numpy with it
    ({"n_trials": 2**70}, "n_trials", "an integer from 1 to 1000000000"),
    ({"timeout": 1e300}, "timeout", "seconds > 0 and <= 1e+09"),
    ({"reconnect_timeout": 1e300}, "reconnect_timeout", "seconds from 0 to 1e+09"),
    ({"heartbeat": {"interval": 10**20, "grace_period": 3 * 10**20}}, "heartbeat.interval",
     "a whole number of seconds from 1 to 1e+09"),
    ({"artifacts": {"checkpoint_every": 1e300}}, "artifacts.checkpoint_every", "seconds from 0 to 1e+09"),
    ({"name": "字" * 100}, "name", "100 characters take 300 bytes in UTF-8; a directory name holds at most 255"),
    ({"name": "\U0001F600" * 64}, "name", "64 characters take 256 bytes"),
], ids=["epochs", "seed", "n_trials", "timeout", "reconnect_timeout", "heartbeat", "checkpoint_every", "cjk name",
        "emoji name"])
def test_an_out_of_range_study_setting_is_blamed_on_the_study_file_and_its_key(tmp_path, changes, key, reason):
    """Each value is refused before anything runs (a timer, a seed or a directory name would refuse it mid-run),
    and the error names the study file and the key the value came from, not a search-space fragment."""
    path = write_study(tmp_path, "bad")
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **changes}, allow_unicode=True))
    with pytest.raises(StudyError) as info:
        load_study_file(path)
    assert (info.value.source, info.value.key) == (str(path), key)
    assert info.value.reason.startswith(reason), info.value.reason


def test_the_longest_study_name_a_file_system_holds_is_accepted(tmp_path):
    path = write_study(tmp_path, "ok")
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "name": "字" * 85}, allow_unicode=True))
    assert load_study_file(path).name == "字" * 85  # 255 bytes


def test_a_study_setting_that_no_training_config_takes_is_blamed_on_it_not_on_a_parameter(tmp_path):
    """The mechanism behind the blame: check_space_values tries each parameter's values with the study's own
    settings; a setting those never pass with is the study file's key, whatever parameter comes first."""
    from dataclasses import replace

    from adamtune.studies._spec import check_space_values

    path = write_study(tmp_path, "blame")
    with pytest.raises(StudyError) as info:
        check_space_values(replace(load_study_file(path), epochs=10**6))
    assert (info.value.source, info.value.key) == (str(path), "epochs")
    assert info.value.reason == "must be <= 10000, got 1000000"
