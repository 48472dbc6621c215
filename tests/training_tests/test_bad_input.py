"""The user's model that cannot train (wrong logits, nothing to train, too large): exit code 2 and one line in
`check` and `run`, before the store or as the failed trial's reason, never a traceback."""

from __future__ import annotations

import optuna
import pytest

from bad_input import one_line_error
from conftest import adamtune, write_study
from own_data import corrupt, with_module

pytestmark = pytest.mark.slow  # one CLI process per case


def test_check_runs_the_forward_pass_and_counts_skipped_images(tmp_path):
    study = write_study(tmp_path, "own_check", **with_module(tmp_path, model={"entry": "my_nets:wrong_classes"}))
    checked = adamtune("check", str(study))
    assert checked.returncode == 2 and "model returned (64, 7) logits for 10 classes" in checked.stderr
    study = write_study(tmp_path, "own_skip", **corrupt(tmp_path, skip_bad_images=True))
    checked = adamtune("check", str(study), env={"ADAMTUNE_DATA": str(tmp_path / "cache")})
    assert checked.returncode == 0, checked.stderr
    assert "10 classes" not in checked.stdout and "2 classes (cat, dog)" in checked.stdout
    assert "1 unreadable images skipped" in checked.stdout and "8/2/2 train/validation/test" in checked.stdout


LR_MODEL = '''
from torch import nn


def build(input_shape, num_classes, params, *, extra):
    """Right at the default learning rate (the one `check` probes), `extra` logits off at any other."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes + (0 if params["lr"] == 1e-3 else extra)))
'''


@pytest.mark.parametrize("pack", ["1", "2"])
@pytest.mark.parametrize("extra", [1, -1])
def test_a_trial_whose_model_returns_the_wrong_number_of_logits_fails_with_the_reason(tmp_path, extra, pack):
    """`check` probes the model at the defaults; a trial at other values is built and checked again, solo and
    packed: FAIL with the one line as its reason, never COMPLETE with a meaningless loss, never a traceback."""
    (tmp_path / "lr_nets.py").write_text(LR_MODEL)
    study = write_study(tmp_path, "logits", model={"entry": "lr_nets:build", "extra": extra}, epochs=1, n_trials=4,
                        search_space=["adam"], params={}, exclude=[], sampler={"type": "random", "seed": 1})
    assert adamtune("check", str(study)).returncode == 0
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = adamtune("run", str(study), "--storage", url, "--pack", pack)
    line = (f"{study}: model.entry: model returned (2, {10 + extra}) logits for 10 classes; it must return logits "
            "of shape (batch, num_classes) = (2, 10)")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-1] == f"adamtune: error: {line}", result.stderr
    assert "Traceback" not in result.stderr and "failed with" not in result.stderr, result.stderr
    trials = optuna.load_study(study_name="logits", storage=url).trials
    failed = [t for t in trials if t.user_attrs.get("fail_reason") == line]
    assert [t.state.name for t in failed] == ["FAIL"] and failed[0].params["lr"] != 1e-3
    assert all(t.params["lr"] == 1e-3 for t in trials if t.state.name == "COMPLETE")


UNTRAINABLE = '''
import torch
from torch import nn


def frozen(input_shape, num_classes, params):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes)).requires_grad_(False)


def huge(input_shape, num_classes, params, *, floats):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))
    model.register_parameter("unused", nn.Parameter(torch.empty(floats)))  # never touched: no page committed
    return model
'''


def test_a_model_with_nothing_to_train_or_too_large_to_train_is_one_line_before_the_store(tmp_path):
    from adamtune.data import free_memory

    (tmp_path / "untrainable.py").write_text(UNTRAINABLE)
    free = free_memory(__import__("torch").device("cpu"))
    assert free is not None
    cases = {"frozen": ({"entry": "untrainable:frozen"}, "the model has nothing to train: all 2 of its parameter "
                        "tensors are frozen (requires_grad=False)"),
             # weights of half the free memory fit; with gradients and Adam's moments they need twice of it
             "huge": ({"entry": "untrainable:huge", "floats": free // 8}, "the model's ")}
    for name, (model, reason) in cases.items():
        study = write_study(tmp_path, name, model=model, search_space=["adam"], params={}, exclude=[])
        for command in (["check", str(study)], ["run", str(study), "--storage", f"sqlite:///{tmp_path / 's.db'}"]):
            one_line_error(adamtune(*command), 2, f"{study}: model.entry: {reason}")
        assert not (tmp_path / "s.db").exists()
