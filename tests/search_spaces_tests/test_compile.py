"""The search-space compiler: every kind maps to its suggest call, conditionals, and each bad input."""

from __future__ import annotations

import math

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from adamtune.search_spaces import SpaceError, builtin_fragments, compose


def fragment(tmp_path, params: dict, name: str = "frag.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"params": params}))
    return str(path)


def sample(space, seed: int = 0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    trial = study.ask()
    return space.sample(trial), trial


def test_each_kind_becomes_the_matching_optuna_distribution(tmp_path):
    space = compose([fragment(tmp_path, {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "drop": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1},
        "width": {"type": "int", "low": 16, "high": 256, "log": True},
        "layers": {"type": "int", "low": 1, "high": 5, "step": 2},
        "act": {"type": "categorical", "choices": ["relu", "elu"]},
        "batch_size": {"type": "fixed", "value": 64},
    })])
    values, trial = sample(space)
    d = trial.distributions
    assert d["lr"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert d["drop"] == FloatDistribution(0.0, 0.5, step=0.1)
    assert d["width"] == IntDistribution(16, 256, log=True)
    assert d["layers"] == IntDistribution(1, 5, step=2)
    assert d["act"] == CategoricalDistribution(["relu", "elu"])
    assert "batch_size" not in d, "a fixed value is not sampled"
    assert values["batch_size"] == 64
    assert set(values) == {"lr", "drop", "width", "layers", "act", "batch_size"}
    assert space.sampled(values).keys() == {"lr", "drop", "width", "layers", "act"}


def test_beta2_is_sampled_as_log_one_minus_beta2_but_returned_as_beta2():
    space = compose(["adam"])
    seen = []
    for seed in range(40):
        values, trial = sample(space, seed)
        assert trial.distributions["one_minus_beta2"] == FloatDistribution(1e-4, 0.1, log=True)
        assert math.isclose(values["beta2"], 1 - trial.params["one_minus_beta2"])
        seen.append(values["beta2"])
    assert all(0.9 <= b <= 0.9999 for b in seen)
    assert sum(b > 0.99 for b in seen) >= 15, "values near 0.999 must be well covered"


def test_conditional_parameters_exist_only_for_their_parent_value():
    space = compose(["schedule"])
    seen = set()
    for seed in range(60):
        values, trial = sample(space, seed)
        scheduler = values["scheduler"]
        seen.add(scheduler)
        assert ("gamma" in values) == (scheduler == "exponential")
        assert ("step_size" in values) == ("step_gamma" in values) == (scheduler == "step")
        assert ("plateau_factor" in values) == (scheduler == "plateau")
        assert ("cosine_min_factor" in values) == (scheduler in ("cosine", "batch_cosine"))
        assert ("decay_every" in values) == ("decay_rate" in values) == (scheduler == "batch_exponential")
        assert ("onecycle_peak" in values) == ("cycle_beta1" in values) == (scheduler == "onecycle")
        assert ("warmup_steps" in values) == (scheduler in ("batch_exponential", "batch_cosine"))
        assert ("warmup_epochs" in values) == (scheduler in ("none", "exponential", "step", "cosine", "plateau")), \
            "a schedule warms up in its own unit: epochs or batches, never both"
        assert set(trial.params) == set(values)
    assert {"batch_exponential", "onecycle", "batch_cosine"} <= seen


def test_a_study_may_narrow_the_schedulers_to_the_per_batch_ones():
    """cosine_min_factor serves cosine and batch_cosine: dropping cosine keeps it for batch_cosine."""
    narrowed = {"scheduler": {"choices": ["none", "batch_exponential", "onecycle", "batch_cosine"]}}
    space = compose(["schedule"], narrowed, exclude=["gamma", "step_size", "step_gamma", "plateau_factor",
                                                     "plateau_patience"])
    assert "cosine_min_factor" in space.names and "warmup_epochs" in space.names
    for seed in range(30):
        values, _ = sample(space, seed)
        assert ("cosine_min_factor" in values) == (values["scheduler"] == "batch_cosine")
        assert ("warmup_epochs" in values) == (values["scheduler"] == "none")


def test_children_may_be_listed_before_their_parent(tmp_path):
    space = compose([fragment(tmp_path, {
        "gamma": {"type": "float", "low": 0.8, "high": 0.9, "when": {"scheduler": "exponential"}},
        "scheduler": {"type": "categorical", "choices": ["none", "exponential"]},
    })])
    assert space.names == ["scheduler", "gamma"]


def test_baseline_uses_each_parameters_default_by_its_stored_name():
    space = compose(["adam", "schedule", "regularization"])
    baseline = space.baseline()
    assert baseline["lr"] == 1e-3 and baseline["beta1"] == 0.9 and baseline["eps"] == 1e-8
    assert math.isclose(baseline["one_minus_beta2"], 0.001)
    assert baseline["optimizer"] == "adam" and baseline["use_weight_decay"] is False
    assert "weight_decay" not in baseline, "weight decay is off in the baseline, so it is not sampled"
    assert baseline["scheduler"] == "none" and baseline["warmup_epochs"] == 0
    assert not {"gamma", "decay_every", "onecycle_peak", "warmup_steps"} & set(baseline), "per-batch schedules off"
    study = optuna.create_study()
    study.enqueue_trial(baseline)
    values = space.sample(study.ask())
    assert math.isclose(values["beta2"], 0.999) and "weight_decay" not in values


def test_overrides_change_ranges_and_exclude_removes(tmp_path):
    space = compose(["adam", "augmentation"], {"lr": {"low": 1e-3, "high": 1e-2}}, ["hflip"])
    assert (space["lr"].low, space["lr"].high, space["lr"].log) == (1e-3, 1e-2, True)
    assert "hflip" not in space.names


def test_a_fragments_default_follows_an_override_that_moves_the_range_away_from_it():
    """`batch_size: {choices: [16, 32, 128]}` under the batch fragment's default 64 is not an error about a
    default the study never wrote: the default moves to the nearest value the override allows."""
    space = compose(["batch", "regularization"], {"batch_size": {"choices": [16, 32, 128]}, "dropout": {"low": 0.1},
                                                  "patience": {"low": 2, "high": 5}})
    assert (space["batch_size"].default, space["dropout"].default, space["patience"].default) == (32, 0.1, 2)
    assert space.baseline()["batch_size"] == 32, "the baseline trial trains with the default that followed"
    assert compose(["batch"], {"batch_size": {"choices": [64, 128]}})["batch_size"].default == 64, "still allowed"
    with pytest.raises(SpaceError, match="64 lies outside the parameter's range"):
        compose(["batch"], {"batch_size": {"choices": [16, 32], "default": 64}})  # one the study gives is checked


def test_every_builtin_fragment_parses():
    assert {"adam", "schedule", "regularization", "augmentation", "batch", "mlp", "cnn"} <= set(builtin_fragments())
    for name in builtin_fragments():
        if name != "cnn":  # cnn and mlp both define width/activation
            compose([name])


def test_numbers_written_without_a_dot_are_accepted(tmp_path):
    # PyYAML reads 1e-5 (no dot) as a string; users write it that way.
    path = tmp_path / "f.yaml"
    path.write_text("params:\n  lr: {type: float, low: 1e-5, high: 1e-1, log: true}\n")
    assert compose([str(path)])["lr"].low == 1e-5


BAD = [
    ({"lr": {"type": "float", "low": 1, "high": 2, "lgo": True}}, "lr.lgo", "unknown key"),
    ({"lr": {"type": "float", "low": 0.5, "high": 0.1}}, "lr.low", "greater than high"),
    ({"lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}, "lr.low", "log range needs low > 0"),
    ({"act": {"type": "categorical", "choices": []}}, "act.choices", "non-empty list"),
    ({"act": {"type": "categorical", "choices": ["a", "a"]}}, "act.choices", "same choice twice"),
    ({"x": {"type": "uniform", "low": 0, "high": 1}}, "x.type", "must be one of"),
    ({"x": {"type": "int", "low": 0.5, "high": 2}}, "x.low", "expected an integer"),
    ({"x": {"type": "float", "low": "abc", "high": 2}}, "x.low", "expected a number"),
    ({"x": {"type": "float", "low": 0, "high": 1, "default": 2}}, "x.default", "outside"),
    ({"x": {"type": "fixed"}}, "x.value", "needs a value"),
    ({"g": {"type": "float", "low": 0, "high": 1, "when": {"nothere": "a"}}}, "g.when.nothere", "unknown parent"),
    ({"s": {"type": "categorical", "choices": ["a", "b"]},
      "g": {"type": "float", "low": 0, "high": 1, "when": {"s": "c"}}}, "g.when.s", "can never be 'c'"),
    ({"s": {"type": "categorical", "choices": ["a", "b"]},
      "g": {"type": "float", "low": 0, "high": 1, "when": {"s": ["c", "d"]}}}, "g.when.s", "can never be any of"),
]


@pytest.mark.parametrize("params,key,reason", BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_bad_input_names_file_key_and_reason(tmp_path, params, key, reason):
    path = fragment(tmp_path, params)
    with pytest.raises(SpaceError) as info:
        compose([path])
    assert info.value.source == path
    assert info.value.key.endswith(key)
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{path}: ")


def test_duplicate_parameter_across_fragments_names_both_files(tmp_path):
    a = fragment(tmp_path, {"lr": {"type": "fixed", "value": 1}}, "a.yaml")
    b = fragment(tmp_path, {"lr": {"type": "fixed", "value": 2}}, "b.yaml")
    with pytest.raises(SpaceError, match="duplicate parameter name") as info:
        compose([a, b])
    assert info.value.source == b and a in info.value.reason


def test_unknown_fragment_and_malformed_yaml(tmp_path):
    with pytest.raises(SpaceError, match="unknown fragment") as info:
        compose(["adma"], study_file="s.yaml")
    assert info.value.source == "s.yaml" and "adam" in info.value.reason
    broken = tmp_path / "broken.yaml"
    broken.write_text("params: {lr: [unclosed\n")
    with pytest.raises(SpaceError, match="not valid YAML"):
        compose([str(broken)])


def test_yaml_cannot_execute_code(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("params: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(SpaceError, match="not valid YAML"):
        compose([str(evil)])
    assert not (tmp_path / "pwned").exists()
