"""Per-epoch learning-rate schedules with an optional linear warm-up, built from PyTorch's own."""

from __future__ import annotations

import math

import torch

from .config import TrainConfig


class EpochSchedule:
    """Steps once per epoch. Warm-up scales lr linearly up to its value over `warmup_epochs`."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: TrainConfig):
        self.cfg = cfg
        self.optimizer = optimizer
        self.epoch = 0
        if cfg.scheduler == "plateau":
            self.base_lrs = [g["lr"] for g in optimizer.param_groups]
            self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, factor=cfg.plateau_factor, patience=cfg.plateau_patience)
            self._set_warmup_lr()
        else:
            self.plateau = None
            self.lambda_lr = torch.optim.lr_scheduler.LambdaLR(optimizer, self.factor)

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
            return cfg.cosine_min_factor + (1 - cfg.cosine_min_factor) * 0.5 * (1 + math.cos(math.pi * min(e, span) / span))
        return 1.0

    def _set_warmup_lr(self) -> None:
        warm = self._warmup(self.epoch)
        if warm is not None:
            for group, base in zip(self.optimizer.param_groups, self.base_lrs):
                group["lr"] = base * warm
        elif self.epoch == self.cfg.warmup_epochs:
            for group, base in zip(self.optimizer.param_groups, self.base_lrs):
                group["lr"] = base

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
