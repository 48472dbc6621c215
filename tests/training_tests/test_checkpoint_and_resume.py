"""Resuming from a checkpoint: a good one continues the run exactly; a damaged or foreign one is set
aside and training starts again from epoch 0 instead of the trial being lost. A run stopped after epoch k and
resumed is the uninterrupted run, epoch for epoch: a retried trial must report the curve and leave the weights
that the trial would have without the crash."""

from __future__ import annotations

import dataclasses
import logging
import os
import random

import pytest
import torch

from adamtune.data import load_dataset
from adamtune.search_spaces import compose
from adamtune.training import Checkpoint, TrainConfig, fit

CFG = TrainConfig(epochs=4, rotation=10, dropout=0.1, scheduler="cosine", seed=3)
OWNER = "0123abcd/trial-0"


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def uninterrupted(digits):
    return [r.val_loss for r in fit(CFG, digits).history]


@pytest.fixture
def saved(tmp_path, digits):
    """A real checkpoint after 2 of 4 epochs, as a killed worker leaves it."""
    checkpoint = Checkpoint(tmp_path / "trial-0" / "checkpoint.pt", owner=OWNER)
    fit(CFG, digits, checkpoint=checkpoint, stop_after=2)
    return checkpoint


def val_losses(result):
    return [r.val_loss for r in result.history]


def test_a_good_checkpoint_resumes_where_the_run_stopped(digits, saved, uninterrupted, caplog):
    replayed = []
    result = fit(CFG, digits, checkpoint=Checkpoint(saved.path, owner=OWNER), on_epoch=replayed.append)
    assert result.resumed_epochs == 2
    assert val_losses(result) == uninterrupted, "on CPU a resumed run equals an uninterrupted one"
    assert [r.epoch for r in replayed] == [0, 1, 2, 3], "the saved epochs are reported again, no gap"
    assert not caplog.records and not list(saved.path.parent.glob("*.bad-*"))


def zero_bytes(path):
    path.write_bytes(b"")


def truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def random_bytes(path):
    path.write_bytes(random.Random(0).randbytes(4096))


def wrong_keys(path):
    state = torch.load(path, weights_only=True)
    state["model"] = {f"renamed.{key}": value for key, value in state["model"].items()}
    torch.save(state, path)


def missing_key(path):
    state = torch.load(path, weights_only=True)
    del state["optimizer"]
    torch.save(state, path)


def wrong_shapes(path):
    """Another model's weights (a namesake study's trial with another width)."""
    state = torch.load(path, weights_only=True)
    state["model"] = {key: torch.zeros(*(2 * n for n in value.shape)) for key, value in state["model"].items()}
    torch.save(state, path)


def wrong_optimizer_shapes(path):
    """The model fits but the Adam moments do not: caught before training, not at the first step."""
    state = torch.load(path, weights_only=True)
    for moments in state["optimizer"]["state"].values():
        moments["exp_avg"] = torch.zeros(3)
    torch.save(state, path)


def another_owner(path):
    state = torch.load(path, weights_only=True)
    state["owner"] = "ffff0000/trial-0"
    torch.save(state, path)


@pytest.mark.parametrize("damage, reason", [
    (zero_bytes, "is empty (0 bytes)"),
    (truncated, "cannot be read (RuntimeError: PytorchStreamReader failed reading zip archive"),
    (random_bytes, "cannot be read (UnpicklingError: "),
    (wrong_keys, "cannot be restored (ValueError: model weights: missing ['1.bias', "),
    (missing_key, "cannot be restored (ValueError: missing entries ['optimizer'])"),
    (wrong_shapes, "cannot be restored (ValueError: model weights 1.weight has shape "),
    (wrong_optimizer_shapes, "cannot be restored (ValueError: optimizer state exp_avg has shape (3,)"),
    (another_owner, "belongs to 'ffff0000/trial-0', not to '0123abcd/trial-0'"),
])
def test_an_unusable_checkpoint_is_set_aside_and_training_starts_again(digits, saved, uninterrupted, caplog,
                                                                       damage, reason):
    damage(saved.path)
    damaged = saved.path.read_bytes()
    with caplog.at_level(logging.WARNING):
        result = fit(CFG, digits, checkpoint=Checkpoint(saved.path, owner=OWNER))
    assert result.resumed_epochs == 0
    assert val_losses(result) == uninterrupted, "trained from epoch 0 exactly as a fresh run"
    aside, = saved.path.parent.glob("checkpoint.pt.bad-*")
    assert aside.read_bytes() == damaged, "the damaged file is kept for a look, under another name"
    warning, = caplog.records
    assert warning.levelno == logging.WARNING
    assert str(saved.path) in warning.getMessage() and reason in warning.getMessage()
    assert "weights_only=False" not in warning.getMessage() and "\n" not in warning.getMessage()
    assert torch.load(saved.path, weights_only=True)["owner"] == OWNER, "this run's own checkpoint replaces it"


class _RunsCodeWhenUnpickled:
    """What a planted checkpoint could hold: unpickling it calls a function of the file's choice (here mkdir)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_a_checkpoint_that_would_run_code_is_set_aside_unexecuted(tmp_path, digits, uninterrupted, caplog):
    """Checkpoints live in a shared directory; loading one must never run what it holds (weights_only)."""
    ran = tmp_path / "code-ran"
    path = tmp_path / "trial-0" / "checkpoint.pt"
    path.parent.mkdir()
    torch.save({"owner": OWNER, "model": _RunsCodeWhenUnpickled(str(ran))}, path)
    with caplog.at_level(logging.WARNING):
        result = fit(CFG, digits, checkpoint=Checkpoint(path, owner=OWNER))
    assert not ran.exists(), "loading the checkpoint ran code it carried"
    assert result.resumed_epochs == 0 and val_losses(result) == uninterrupted
    assert "cannot be read (UnpicklingError" in caplog.text
    assert len(list(path.parent.glob("checkpoint.pt.bad-*"))) == 1


def test_a_user_model_restarted_after_a_damaged_checkpoint_is_still_the_user_model(tmp_path, digits):
    """Restarting from epoch 0 builds the same model the trial asked for, not the built-in one."""
    from adamtune.training import ModelSource

    (tmp_path / "users_nets.py").write_text(
        "import torch\n"
        "def build(input_shape, num_classes, params):\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, params['units']),\n"
        "                               torch.nn.ReLU(), torch.nn.Linear(params['units'], num_classes))\n")
    source = ModelSource.parse({"entry": "users_nets:build"}, origin="test", folder=tmp_path)
    cfg = TrainConfig(model=source.label, epochs=2, batch_size=64)
    checkpoint = Checkpoint(tmp_path / "foreign.pt")
    fit(TrainConfig(epochs=2), digits, checkpoint=checkpoint, stop_after=1)  # loads, but is another model's
    result = fit(cfg, digits, model_source=source, params={"units": 23}, checkpoint=checkpoint)
    assert result.model[1].out_features == 23 and result.resumed_epochs == 0


@pytest.mark.parametrize("left", [0, 8 << 10, 64 << 10, 256 << 10], ids=["0", "8KiB", "64KiB", "256KiB"])
def test_a_full_disk_is_an_os_error_whatever_space_was_left(tmp_path, left):
    """However little or much space the disk has left when a checkpoint (here 400 KB) does not fit, the write
    fails as an OSError with ENOSPC (what the worker recognises as a full disk), leaves no partial file, and
    the previous checkpoint stays whole."""
    import errno

    from small_filesystems import fill, tmpfs

    with tmpfs(tmp_path / "small", size="1m") as small:
        checkpoint = Checkpoint(small / "trial-0" / "checkpoint.pt")
        checkpoint.save({"weights": torch.zeros(100_000), "epoch": 0})
        filler = fill(small)
        os.truncate(filler, max(filler.stat().st_size - left, 0))
        with pytest.raises(OSError) as info:
            checkpoint.save({"weights": torch.ones(100_000), "epoch": 1})
        assert info.value.errno == errno.ENOSPC
        assert [p.name for p in checkpoint.path.parent.iterdir()] == ["checkpoint.pt"]
        assert checkpoint.load()["epoch"] == 0


# Every schedule kind the schedule fragment offers, so a new kind is covered when it is added there.
SCHEDULERS = next(p.choices for p in compose(["schedule"]).params if p.name == "scheduler")
# A warm-up epoch, steps, a plateau that cuts the lr in epoch 7, and every augmentation digits allows
# (hflip is refused on digits), with dropout: the model, optimizer, schedule and both random streams matter.
CONFIG = TrainConfig(model="mlp", width=32, batch_size=32, epochs=8, lr=1e-2, optimizer="adamw", weight_decay=1e-2,
                     warmup_epochs=1, gamma=0.8, step_size=2, step_gamma=0.5, plateau_patience=1, plateau_factor=0.5,
                     rotation=10, translate=0.1, random_crop=1, random_erasing=0.25, dropout=0.1)


# Per-batch schedules warm up in steps (warm-up in epochs is refused with them) and decay every 20 batches
# (digits has 36 a epoch), so the lr moves after either resume point.
PER_BATCH = {"batch_exponential": {"warmup_epochs": 0, "warmup_steps": 20, "decay_every": 20},
             "batch_cosine": {"warmup_epochs": 0, "warmup_steps": 20},
             "onecycle": {"warmup_epochs": 0}}


class Interrupted(Exception):
    """Stands in for a killed worker: raised from the epoch hook, after the epoch's checkpoint is written."""


def interrupt_after(epochs: int):
    def hook(record):
        if record.epoch == epochs - 1:
            raise Interrupted
    return hook


def curve(history) -> list[tuple]:
    """Everything an epoch reports except its wall time."""
    return [(r.epoch, r.train_loss, r.val_loss, r.val_accuracy, r.lr) for r in history]


def assert_same_tensors(a, b) -> None:
    """Exactly equal nested state (weights, Adam moments, generator states), not merely close."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_tensors(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_tensors(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("stopped_after", [1, 6], ids=["after-warmup-epoch", "mid-plateau"])
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_resumed_run_equals_the_uninterrupted_run(digits, tmp_path, scheduler, stopped_after):
    cfg = dataclasses.replace(CONFIG, scheduler=scheduler, **PER_BATCH.get(scheduler, {}))
    cfg.validate()
    whole_checkpoint = Checkpoint(tmp_path / "whole.pt")
    whole = fit(cfg, digits, checkpoint=whole_checkpoint)
    if scheduler != "none":
        lrs = {r.lr for r in whole.history[stopped_after - 1:]}
        assert len(lrs) > 1, "the schedule moves the lr after the resume point, so its state matters"

    checkpoint = Checkpoint(tmp_path / "trial.pt")
    with pytest.raises(Interrupted):
        fit(cfg, digits, checkpoint=checkpoint, on_epoch=interrupt_after(stopped_after))
    reported = []
    resumed = fit(cfg, digits, checkpoint=checkpoint, on_epoch=reported.append)

    assert resumed.resumed_epochs == stopped_after
    assert curve(reported) == curve(resumed.history), "the restored epochs are reported again: no gap"
    assert curve(resumed.history) == curve(whole.history)
    assert resumed.best_epoch == whole.best_epoch
    assert_same_tensors(resumed.model.state_dict(), whole.model.state_dict())  # the best epoch's weights
    last, whole_last = checkpoint.load(), whole_checkpoint.load()  # the last epoch's model, optimizer, schedule
    for key in ("model", "optimizer", "schedule", "generator", "torch_rng"):
        assert_same_tensors(last[key], whole_last[key])
