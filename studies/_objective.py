"""The objective: trial -> sampled values -> training config -> the shared loop, reporting each epoch."""

from __future__ import annotations

import os
import socket
from typing import Any

import optuna
import torch

from training import DivergedError, EpochRecord, FitResult, TrainConfig, fit, load_dataset

from ._spec import StudySpec

WORKER = f"{socket.gethostname()}:{os.getpid()}"


def describe(config: TrainConfig) -> str:
    """The configuration in words, for tables and the dashboard."""
    parts = [f"{config.optimizer.replace('adamw', 'AdamW').replace('adam', 'Adam')} lr={config.lr:.2g}"]
    if config.scheduler != "none":
        parts[0] += f" {config.scheduler}"
    if config.weight_decay:
        parts.append(f"wd={config.weight_decay:.1g}")
    if config.dropout:
        parts.append(f"dropout {config.dropout:.2f}")
    if config.rotation:
        parts.append(f"rotation {config.rotation:.0f}°")
    parts.append(f"batch {config.batch_size}, width {config.width}")
    return ", ".join(parts)


class Objective:
    """Callable for `study.optimize`; the dataset is loaded once per worker process."""

    def __init__(self, spec: StudySpec, device: torch.device, data_root: str | None = None,
                 on_epoch: Any = None) -> None:
        self.spec = spec
        self.device = device
        self.data = load_dataset(spec.dataset, data_root, device)
        self.on_epoch = on_epoch  # progress display hook: (trial number, EpochRecord)

    def __call__(self, trial: optuna.Trial) -> float:
        values = self.spec.space.sample(trial)
        config = self.spec.config_for(values, seed=self.spec.seed + trial.number)
        trial.set_user_attr("params", self.spec.space.sampled(values))
        trial.set_user_attr("config", config.to_dict())
        trial.set_user_attr("summary", describe(config))
        trial.set_user_attr("worker", WORKER)
        curve: dict[str, list] = {"train_loss": [], "val_loss": [], "val_accuracy": [], "lr": [], "seconds": []}

        def report(record: EpochRecord) -> None:
            for key in curve:
                curve[key].append(getattr(record, key))
            trial.set_user_attr("curve", curve)
            trial.report(getattr(record, self.spec.objective), record.epoch)
            if self.on_epoch:
                self.on_epoch(trial.number, record)
            if trial.should_prune():
                trial.set_user_attr("pruned_reason", f"pruner stopped it after epoch {record.epoch}")
                raise optuna.TrialPruned(f"pruned after epoch {record.epoch}")

        def started(result: FitResult) -> None:
            trial.set_user_attr("device", result.device)
            trial.set_user_attr("param_count", result.param_count)

        try:
            result = fit(config, self.data, device=self.device, on_start=started, on_epoch=report)
        except DivergedError as exc:
            trial.set_user_attr("pruned_reason", f"diverged: {exc}")
            raise optuna.TrialPruned(f"diverged: {exc}") from None
        trial.set_user_attr("best_epoch", result.best_epoch)
        trial.set_user_attr("epochs_trained", len(result.history))
        trial.set_user_attr("val_loss", result.val_loss)
        trial.set_user_attr("val_accuracy", result.val_accuracy)
        return result.val_loss if self.spec.objective == "val_loss" else result.val_accuracy
