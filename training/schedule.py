"""Learning-rate schedules, built from PyTorch's own: per-epoch ones with a warm-up in epochs, and
per-batch ones (the article's decay every N batches, one-cycle, cosine) with a warm-up in batches.

Both kinds answer the loop alike: `batch_end()` after every optimizer step, `step(loss)` after every
epoch, `lr` (the learning rate of the latest batch: what an epoch's record shows) and a state dict
that a checkpoint carries, so a resumed run continues the schedule exactly.
"""

from __future__ import annotations

import math

import torch
from torch.optim import lr_scheduler

from .config import BATCH_SCHEDULERS, TrainConfig


def build_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                   steps_per_epoch: int) -> Schedule:
    """The schedule `cfg` names. Per-batch ones are laid out over `cfg.epochs` epochs of
    `steps_per_epoch` batches, so stopping early (`fit`'s `stop_after`) cuts the schedule short
    rather than squeezing it into fewer epochs."""
    if BatchSchedule.applies(cfg):
        return BatchSchedule(optimizer, cfg, cfg.epochs * steps_per_epoch)
    return EpochSchedule(optimizer, cfg)


class BatchSchedule:
    """Steps after every batch: `batch_exponential` (StepLR: lr x `decay_rate` every `decay_every`
    batches), `onecycle` (OneCycleLR peaking at `lr` after `onecycle_peak` of training), `batch_cosine`
    (CosineAnnealingLR down to `cosine_min_factor` x lr at the last batch), each but onecycle after an
    optional linear warm-up of `warmup_steps` batches (LinearLR, then SequentialLR hands over);
    `none` with `warmup_steps` is the warm-up alone."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
        self.optimizer = optimizer
        self.scheduler = batch_scheduler(optimizer, cfg, total_steps)
        self.last_lr: float | None = None  # of the latest batch; after the last one onecycle's next lr is past its end

    @staticmethod
    def applies(cfg: TrainConfig) -> bool:
        return cfg.scheduler in BATCH_SCHEDULERS or cfg.warmup_steps > 0

    def batch_end(self) -> None:
        self.last_lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()

    def step(self, val_loss: float | None) -> None:
        """Epoch end: nothing to do, every step happened after a batch."""

    def state_dict(self) -> dict:
        return {"inner": self.scheduler.state_dict(), "lrs": [g["lr"] for g in self.optimizer.param_groups]}

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state["inner"])
        for group, lr in zip(self.optimizer.param_groups, state["lrs"], strict=True):
            group["lr"] = lr

    @property
    def lr(self) -> float:
        """The learning rate the latest batch trained with (the next one's before any batch)."""
        return self.optimizer.param_groups[0]["lr"] if self.last_lr is None else self.last_lr


def batch_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int) -> lr_scheduler.LRScheduler:
    """PyTorch's scheduler for a per-batch `cfg` over `total_steps` optimizer steps."""
    if cfg.scheduler == "onecycle":
        # PyTorch's defaults but the peak: start at lr/25, end at lr/25/1e4, cosine annealing. With
        # cycle_beta1, beta1 runs the other way: beta1 at both ends, 0.85/0.95 of it at the peak
        # (PyTorch's 0.95 -> 0.85 cycle, scaled to the trial's beta1).
        return lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total_steps,
                                       pct_start=cfg.onecycle_peak, cycle_momentum=cfg.cycle_beta1,
                                       base_momentum=cfg.beta1 * 0.85 / 0.95, max_momentum=cfg.beta1)
    warmup = cfg.warmup_steps
    ramp = None
    if warmup:  # batch t < warmup trains with lr * (t+1)/(warmup+1), as warmup_epochs does per epoch
        ramp = lr_scheduler.LinearLR(optimizer, start_factor=1 / (warmup + 1), end_factor=1.0, total_iters=warmup)
    main: lr_scheduler.LRScheduler
    if cfg.scheduler == "batch_exponential":
        main = lr_scheduler.StepLR(optimizer, step_size=cfg.decay_every, gamma=cfg.decay_rate)
    elif cfg.scheduler == "batch_cosine":
        main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup),
                                              eta_min=cfg.lr * cfg.cosine_min_factor)
    else:  # none: the warm-up alone, then lr stays
        assert ramp is not None, "scheduler none without warm-up steps is an EpochSchedule"
        return ramp
    return main if ramp is None else lr_scheduler.SequentialLR(optimizer, [ramp, main], milestones=[warmup])


class EpochSchedule:
    """Steps once per epoch. Warm-up scales lr linearly up to its value over `warmup_epochs`."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: TrainConfig):
        self.cfg = cfg
        self.optimizer = optimizer
        self.epoch = 0
        self.plateau: lr_scheduler.ReduceLROnPlateau | None = None
        if cfg.scheduler == "plateau":
            self.base_lrs = [g["lr"] for g in optimizer.param_groups]
            self.plateau = lr_scheduler.ReduceLROnPlateau(
                optimizer, factor=cfg.plateau_factor, patience=cfg.plateau_patience)
            self._set_warmup_lr()
        else:
            self.lambda_lr = lr_scheduler.LambdaLR(optimizer, self.factor)

    def _warmup(self, epoch: int) -> float | None:
        w = self.cfg.warmup_epochs
        return (epoch + 1) / (w + 1) if epoch < w else None

    def factor(self, epoch: int) -> float:
        """lr multiplier for `epoch` (0-based) for every scheduler but plateau."""
        warm = self._warmup(epoch)
        if warm is not None:
            return warm
        cfg = self.cfg
        e = epoch - cfg.warmup_epochs
        if cfg.scheduler == "exponential":
            return cfg.gamma ** e
        if cfg.scheduler == "step":
            return cfg.step_gamma ** (e // cfg.step_size)
        if cfg.scheduler == "cosine":
            span = max(1, cfg.epochs - cfg.warmup_epochs - 1)
            cosine = 0.5 * (1 + math.cos(math.pi * min(e, span) / span))
            return cfg.cosine_min_factor + (1 - cfg.cosine_min_factor) * cosine
        return 1.0

    def _set_warmup_lr(self) -> None:
        warm = self._warmup(self.epoch)
        if warm is not None:
            for group, base in zip(self.optimizer.param_groups, self.base_lrs):
                group["lr"] = base * warm
        elif self.epoch == self.cfg.warmup_epochs:
            for group, base in zip(self.optimizer.param_groups, self.base_lrs):
                group["lr"] = base

    def batch_end(self) -> None:
        """After each batch: nothing to do, this schedule steps per epoch."""

    def step(self, val_loss: float | None) -> None:
        """Call after each epoch; plateau needs the validation loss (training loss when there is none)."""
        self.epoch += 1
        if self.plateau is None:
            self.lambda_lr.step()
        elif self.epoch <= self.cfg.warmup_epochs:
            self._set_warmup_lr()
        elif val_loss is not None:
            self.plateau.step(val_loss)

    def state_dict(self) -> dict:
        inner = self.plateau if self.plateau is not None else self.lambda_lr
        return {"epoch": self.epoch, "inner": inner.state_dict(), "lrs": [g["lr"] for g in self.optimizer.param_groups]}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state["epoch"]
        (self.plateau if self.plateau is not None else self.lambda_lr).load_state_dict(state["inner"])
        for group, lr in zip(self.optimizer.param_groups, state["lrs"]):
            group["lr"] = lr

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]


Schedule = EpochSchedule | BatchSchedule
