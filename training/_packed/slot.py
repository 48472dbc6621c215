"""One trial in a pack (a slot): which trials may share a pack, what a slot holds, how its schedule drives
its hyperparameters, its dropout masks, and what its checkpoint keeps and restores.

A packed checkpoint holds the slot's row of the stacked weights and of Adam's state, its schedule, both
generators (batches and augmentation; dropout masks), early-stopping state and history: a retried trial
resumes exactly where it stopped, in any pack of its structure.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..augment import Augmentation
from ..checkpoint import Checkpoint
from ..config import TrainConfig, model_params
from ..errors import DivergedError
from ..rules import EpochRecord, FitResult, saved_history
from ..schedule import BatchSchedule, Schedule, build_schedule
from .stacked import StackedModel
from .stacked_adam import StackedAdam

DROPOUT_STREAM = 0x5EED  # the dropout generator's seed is the trial's seed plus this: a stream of its own
SHARED = ("dataset", "model", "epochs", "batch_size", "width", "activation")  # settings a pack's slots share


def structure_key(cfg: TrainConfig, params: dict[str, Any] | None = None, user_model: bool = False) -> tuple:
    """What trials must agree on to share a pack: the shared settings, and for the user's own model every
    value its builder gets that is not a training setting (any of them may change the model's shapes)."""
    own = sorted((k, repr(v)) for k, v in model_params(params or {}).items()) if user_model else []
    return (*(getattr(cfg, name) for name in SHARED), *own)


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
    dummy: torch.optim.Optimizer  # see driven_schedule
    schedule: Schedule
    checkpoint: Checkpoint | None
    result: FitResult
    best_state: dict | None = None
    since_best: int = 0
    saved_at: float | None = None  # time.monotonic() of its last checkpoint; None: none yet (rules.checkpoint_due)


def driven_schedule(cfg: TrainConfig, steps_per_epoch: int) -> tuple[torch.optim.Optimizer, Schedule]:
    """The slot's schedule, on a dummy optimizer: how a packed trial gets PyTorch's own LR schedules.

    StackedAdam steps every slot's weights, but PyTorch's schedulers drive an optimizer's param group. So each
    slot's schedule (built by `build_schedule`, exactly as `fit` builds its own) drives a one-number Adam that
    never steps, and the pack copies that optimizer's lr and beta1 (one-cycle can cycle it) into the slot's
    row of hyperparameters: per batch from `batch_table`, per epoch through `slot_hyper`. Its state travels
    in the slot's checkpoint with the schedule's."""
    dummy = torch.optim.Adam([torch.zeros(1)], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    dummy._opt_called = True  # type: ignore[attr-defined]  # it never steps; its schedule must not warn
    return dummy, build_schedule(dummy, cfg, steps_per_epoch)


def slot_hyper(s: Slot) -> dict[str, float]:
    """The slot's row of StackedAdam's hyperparameters, the schedule's lr and beta1 as they stand now (Adam's
    weight decay is an L2 term, AdamW's decoupled, as in torch.optim)."""
    cfg, group = s.cfg, s.dummy.param_groups[0]
    adamw = cfg.optimizer == "adamw"
    return {"lr": group["lr"], "beta1": group["betas"][0], "beta2": cfg.beta2, "eps": cfg.eps,
            "l2": 0.0 if adamw else cfg.weight_decay, "decoupled": cfg.weight_decay if adamw else 0.0,
            "amsgrad": float(cfg.amsgrad), "clip": cfg.grad_clip, "smoothing": cfg.label_smoothing}


def batch_table(s: Slot, steps_per_epoch: int) -> list[tuple[float, float]] | None:
    """A per-batch schedule's (lr, beta1) for each batch of the coming epoch, stepped as fit steps it; None for
    a per-epoch schedule (its values change at epoch ends)."""
    if not isinstance(s.schedule, BatchSchedule):
        return None
    group, out = s.dummy.param_groups[0], []
    for _ in range(steps_per_epoch):
        out.append((group["lr"], group["betas"][0]))
        s.schedule.batch_end()
    return out


def dropout_masks(slots: list[Slot], shapes: list[tuple[int, ...]], rows: int,
                  device: torch.device) -> list[torch.Tensor]:
    """One scaled mask per dropout module (K, rows, ...) for `rows` samples: each slot keeps a unit with
    probability 1 - p, drawn from the slot's own generator (uniforms, compared: a tenth of bernoulli_'s cost
    on CPU), and scales it by 1 / (1 - p) as nn.Dropout does; p = 0 draws nothing."""
    out = []
    for m, shape in enumerate(shapes):
        masks = []
        for s in slots:
            keep = 1 - s.drop_rates[m]
            if keep < 1:
                u = torch.rand((rows, *shape), device=device, generator=s.drop_gen)
                masks.append(u.lt_(keep).div_(keep))
            else:
                masks.append(torch.ones((rows, *shape), device=device))
        out.append(torch.stack(masks))
    return out


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
    records = saved_history(saved)
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
