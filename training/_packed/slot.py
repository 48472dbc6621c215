"""One trial in a pack (a slot): what it holds, and what its checkpoint keeps and restores.

A packed checkpoint holds the slot's row of the stacked weights and of Adam's state, its schedule, both
generators (batches and augmentation; dropout masks), early-stopping state and history: a retried trial
resumes exactly where it stopped, in any pack of its structure.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ..augment import Augmentation
from ..checkpoint import Checkpoint
from ..config import TrainConfig
from ..errors import DivergedError
from ..loop import EpochRecord, FitResult
from .stacked import StackedModel
from .stacked_adam import StackedAdam


@dataclass
class SlotOutcome:
    """What one slot did in one epoch: its record, or why it ended (`error` a DivergedError)."""

    key: Hashable
    record: EpochRecord | None
    finished: bool  # trained its last epoch or stopped early: `result` is ready
    error: DivergedError | None = None


@dataclass
class Slot:
    """One trial in a pack: its settings, generators, schedule, checkpoint and result so far."""

    key: Hashable
    cfg: TrainConfig
    params: dict[str, Any]
    gen: torch.Generator  # batch order and augmentation, as fit's
    drop_gen: torch.Generator  # dropout masks
    drop_rates: list[float]
    aug: Augmentation
    dummy: torch.optim.Optimizer  # a one-number Adam the slot's schedule drives: PyTorch's own schedulers
    schedule: Any
    checkpoint: Checkpoint | None
    result: FitResult
    best_state: dict | None = None
    since_best: int = 0
    saved_at: float = field(default_factory=time.monotonic)



def slot_state(model: StackedModel, adam: StackedAdam, row: int, s: Slot) -> dict[str, Any]:
    """What the slot's checkpoint holds (weights_only-loadable: tensors, numbers, lists, dicts)."""
    return {"packed": True, "model": model.row_state(row), "optimizer": adam.row_state(row),
            "schedule": s.schedule.state_dict(), "dummy": s.dummy.state_dict(), "generator": s.gen.get_state(),
            "drop_generator": s.drop_gen.get_state(), "best_state": s.best_state, "since_best": s.since_best,
            "best_epoch": s.result.best_epoch, "history": [asdict(r) for r in s.result.history]}


def restore_slot(saved: dict, model: StackedModel, adam: StackedAdam, row: int, s: Slot) -> list[EpochRecord]:
    """Put a checkpoint back in `row` and the slot; returns the epochs it had trained. Raises ValueError
    (or what loading raises) for one that is not a packed checkpoint of this structure."""
    if not saved.get("packed"):
        raise ValueError("it was written by a solo trial")
    records = [EpochRecord(**r) for r in saved["history"]]
    if [r.epoch for r in records] != list(range(len(records))):
        raise ValueError("its history is not the epochs 0, 1, 2, ... in order")
    state = saved["model"]
    expected = {**{k: torch.empty(v) for k, v in model.shapes.items()},
                **{k: b[0] for k, b in model.buffers.items()}}
    if set(state) != set(expected) or any(tuple(state[k].shape) != tuple(expected[k].shape) for k in expected):
        raise ValueError("its weights do not fit this model")
    model.set_row(row, state)
    adam.load_row(row, saved["optimizer"])
    s.dummy.load_state_dict(saved["dummy"])
    s.schedule.load_state_dict(saved["schedule"])
    s.gen.set_state(saved["generator"])
    s.drop_gen.set_state(saved["drop_generator"])
    s.best_state, s.since_best, s.result.best_epoch = saved["best_state"], int(saved["since_best"]), saved["best_epoch"]
    return records
