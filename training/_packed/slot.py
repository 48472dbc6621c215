"""One trial in a pack (a slot): which trials may share a pack, what a slot holds, how its schedule drives
its hyperparameters, its training rows and dropout masks, and what its checkpoint keeps and restores.

A packed checkpoint holds the slot's row of the stacked weights and of Adam's state in the trial's own shapes
(not the pack's padded ones), its schedule, both generators (batches and augmentation; dropout masks),
early-stopping state and history: a retried trial resumes exactly where it stopped, in any pack it fits.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from .. import rules
from ..augment import Augmentation
from ..checkpoint import Checkpoint
from ..config import TrainConfig, model_params
from ..errors import DivergedError
from ..rules import EpochRecord, FitResult, saved_history
from ..schedule import BatchSchedule, Schedule, build_schedule
from .padding import Padding
from .stacked import StackedModel
from .stacked_adam import MOMENTS, StackedAdam

DROPOUT_STREAM = 0x5EED  # the dropout generator's seed is the trial's seed plus this: a stream of its own
USER_SHARED = ("width", "depth", "activation")  # settings the user's builder may read: shared to share a pack
LOSS_SHARED = ("loss", "class_weights")  # a pack computes one kind of loss (a Huber delta is per slot)
NORM_MODELS = ("cnn", "resnet")  # the built-in models with BatchNorm: their packs keep one batch size


def shared_settings(model: str, user_model: bool, device_type: str) -> tuple[str, ...]:
    """The sampled settings a group of trials is asked with in common so that all of them fit one pack on
    this device (`Pack.can_take` has the last word): on a GPU a built-in model's trials need none (widths
    pad and batch sizes mix, but not under BatchNorm); on a CPU they share batch size and width, which
    packs there do not mix (padded units and per-tick steps cost arithmetic); the user's model shares what
    its builder may read and its batch size."""
    if user_model:
        return (*USER_SHARED, "batch_size", *LOSS_SHARED)
    if device_type == "cpu":
        return ("batch_size", "width", "depth", *LOSS_SHARED)
    return (*(("batch_size",) if model in NORM_MODELS else ()), "depth", *LOSS_SHARED)


def structure_key(cfg: TrainConfig, params: dict[str, Any] | None = None, user_model: bool = False) -> tuple:
    """What trials must agree on to share a pack: the kind of loss, and a built-in model and its depth (widths
    and activations are padded and mixed, padding.py). The user's own model's trials share the settings its
    builder may read and every value it gets that is not a training setting (any may change its shapes)."""
    loss = tuple(getattr(cfg, name) for name in LOSS_SHARED)
    if not user_model:
        return (cfg.model, cfg.depth, *loss)
    own = sorted((k, repr(v)) for k, v in model_params(params or {}).items())
    return (cfg.model, *(getattr(cfg, name) for name in USER_SHARED), *loss, *own)


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
    padding: Padding  # its own shapes in the pack's
    noise_shapes: list[tuple[int, ...]]  # one sample's shape at each dropout module, in its own model
    best_state: dict | None = None  # in its own shapes
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
            "amsgrad": float(cfg.amsgrad), "clip": cfg.grad_clip, "smoothing": cfg.label_smoothing,
            "delta": cfg.huber_delta}


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


class SlotRows:
    """A slot's training rows for one epoch: gathered, augmented and given dropout masks in its own chunks, as
    `fit` gathers them (so its generators draw in the same order whatever its pack), handed out a tick at a
    time. Masks are drawn in the slot's own shapes (uniforms, compared: a tenth of bernoulli_'s cost on CPU,
    scaled by 1 / (1 - p) as nn.Dropout does; p = 0 draws nothing) and padded with ones to the pack's."""

    def __init__(self, slot: Slot, split, data, normalize, shapes: list[tuple[int, ...]],
                 device: torch.device) -> None:
        self.slot, self.split, self.data, self.normalize = slot, split, data, normalize
        self.shapes, self.device = shapes, device
        self.chunk = rules.chunk_size(slot.cfg.batch_size)
        self.order = torch.randperm(len(split), generator=slot.gen, device=device)
        self.start = self.end = 0
        self.rows: tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]] | None = None

    def take(self, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Rows lo..hi of the epoch (ticks never straddle a chunk: a tick divides every slot's batch, and a
        chunk is whole batches)."""
        if hi > self.end:
            self.start, self.end = self.end, min(len(self.order), self.end + self.chunk)
            self.rows = self._prepare(self.order[self.start:self.end])
        assert self.rows is not None and self.start <= lo and hi <= self.end
        images, labels, masks = self.rows
        a, b = lo - self.start, hi - self.start
        return images[a:b], labels[a:b], [m[a:b] for m in masks]

    def _prepare(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        s = self.slot
        images, labels = rules.train_chunk(self.split, idx, self.data, s.aug, s.gen, self.normalize)
        masks = []
        for rate, own, shape in zip(s.drop_rates, s.noise_shapes, self.shapes):
            keep = 1 - rate
            full = torch.ones((len(idx), *shape), device=self.device)
            if keep < 1:
                u = torch.rand((len(idx), *own), device=self.device, generator=s.drop_gen)
                full[(slice(None), *(slice(0, n) for n in own))] = u.lt_(keep).div_(keep)
            masks.append(full)
        return images, labels, masks


def slot_state(model: StackedModel, adam: StackedAdam, row: int, s: Slot) -> dict[str, Any]:
    """What the slot's checkpoint holds (weights_only-loadable: tensors, numbers, lists, dicts)."""
    optimizer = adam.row_state(row)
    for name in MOMENTS:
        optimizer[name] = s.padding.extract_flat(optimizer[name], list(model.sizes))
    return {"packed": True, "model": s.padding.extract(model.row_state(row)), "optimizer": optimizer,
            "schedule": s.schedule.state_dict(), "dummy": s.dummy.state_dict(), "generator": s.gen.get_state(),
            "drop_generator": s.drop_gen.get_state(), "best_state": s.best_state, "since_best": s.since_best,
            "best_epoch": s.result.best_epoch, "history": [asdict(r) for r in s.result.history]}


def restore_slot(saved: dict, model: StackedModel, adam: StackedAdam, row: int, s: Slot) -> list[EpochRecord]:
    """Put a checkpoint back in `row` and the slot; returns the epochs it had trained. Raises ValueError
    (or what loading raises) for one that is not a packed checkpoint of this structure."""
    if not saved.get("packed"):
        raise ValueError("it was written by a solo trial")
    records = saved_history(saved)
    state, own = saved["model"], s.padding.own
    if set(state) != set(own) or any(tuple(state[k].shape) != own[k] for k in own):
        raise ValueError("its weights do not fit this model")
    model.set_row(row, s.padding.embed(state))
    names = list(model.sizes)
    adam.load_row(row, {**saved["optimizer"], **{name: s.padding.embed_flat(saved["optimizer"][name], names)
                                                 for name in MOMENTS}})
    s.dummy.load_state_dict(saved["dummy"])
    s.schedule.load_state_dict(saved["schedule"])
    s.gen.set_state(saved["generator"])
    s.drop_gen.set_state(saved["drop_generator"])
    s.best_state, s.since_best, s.result.best_epoch = saved["best_state"], int(saved["since_best"]), saved["best_epoch"]
    return records
