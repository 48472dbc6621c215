"""A run stopped after epoch k and resumed from its checkpoint is the uninterrupted run, epoch for epoch:
a retried trial must report the curve and leave the weights that the trial would have without the crash."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from adamtune.data import load_dataset
from adamtune.search_spaces import compose
from adamtune.training import Checkpoint, TrainConfig, fit

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


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


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
