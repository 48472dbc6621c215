"""The objective: trial -> sampled values -> training config -> the shared loop, reporting each epoch."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import warnings
from pathlib import Path
from typing import Any

import optuna
import torch

from training import DivergedError, EpochRecord, FitResult, TrainConfig, fit, load_dataset
from training.checkpoint import Checkpoint

from ._artifacts import artifact_store, upload_config, upload_curve, write_note
from ._artifacts_dir import TrialFileError, check_artifacts_dir
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
                 on_epoch: Any = None, artifacts: str | None = None) -> None:
        self.spec = spec
        self.device = device
        self.data = load_dataset(spec.dataset, data_root, device)
        self.on_epoch = on_epoch  # progress display hook: (trial number, EpochRecord)
        root = Path(artifacts or spec.artifacts)
        self.root = check_artifacts_dir(root)
        self.artifacts = root / spec.name
        self.store = artifact_store(root)
        self.current: int | None = None  # trial number in progress, for clean-up after an interruption

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            return self._trial(trial)
        except OSError as exc:  # a checkpoint or artifact write on a full or read-only disk
            error = TrialFileError(trial.number, self.root, exc)
            with contextlib.suppress(Exception):  # the reason is a note; the store may be on the same disk
                trial.set_user_attr("fail_reason", error.reason)
            raise error from exc

    def _trial(self, trial: optuna.Trial) -> float:
        self.current = trial.number
        # A retried trial (its worker died) continues the original: same seed, same checkpoint.
        frozen = next(t for t in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
                      if t.number == trial.number)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            origin = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen)
        origin = trial.number if origin is None else origin
        if origin != trial.number:
            trial.set_user_attr("retry_of", origin)
        values = self.spec.space.sample(trial)
        config = self.spec.config_for(values, seed=self.spec.seed + origin)
        checkpoint = Checkpoint(self.artifacts / f"trial-{origin}" / "checkpoint.pt")
        summary = describe(config)
        trial.set_user_attr("params", self.spec.space.sampled(values))
        trial.set_user_attr("config", config.to_dict())
        trial.set_user_attr("summary", summary)
        trial.set_user_attr("worker", WORKER)
        write_note(trial, summary, self.spec.space.sampled(values))
        curve: dict[str, list] = {"train_loss": [], "val_loss": [], "val_accuracy": [], "lr": [], "seconds": []}

        def report(record: EpochRecord) -> None:
            for key in curve:
                curve[key].append(getattr(record, key))
            # One store write per epoch (the intermediate value; it is what pruners and the dashboard
            # read live); the full curve is written once, when the trial ends.
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
            result = fit(config, self.data, device=self.device, on_start=started, on_epoch=report,
                         checkpoint=checkpoint)
        except DivergedError as exc:
            trial.set_user_attr("pruned_reason", f"diverged: {exc}")
            self._finished(checkpoint, trial, curve, summary)
            raise optuna.TrialPruned(f"diverged: {exc}") from None
        except optuna.TrialPruned:
            self._finished(checkpoint, trial, curve, summary)
            raise
        # Anything else (interrupted, store lost) keeps the checkpoint so the retry resumes from it.
        trial.set_user_attr("best_epoch", result.best_epoch)
        trial.set_user_attr("epochs_trained", len(result.history))
        if result.resumed_epochs:
            trial.set_user_attr("resumed_epochs", result.resumed_epochs)
        trial.set_user_attr("val_loss", result.val_loss)
        trial.set_user_attr("val_accuracy", result.val_accuracy)
        value = result.val_loss if self.spec.objective == "val_loss" else result.val_accuracy
        if _improves(trial.study, value):
            self._keep_best(result, trial.number)
            upload_config(trial, config.to_dict(), self.store)
        self._finished(checkpoint, trial, curve, summary)
        return value

    def _finished(self, checkpoint: Checkpoint, trial: optuna.Trial, curve: dict, summary: str) -> None:
        """A finished (complete or pruned) trial: its curve goes to the dashboard, its checkpoint away."""
        trial.set_user_attr("curve", curve)
        if curve["val_loss"]:
            upload_curve(trial, curve, self.store, f"trial {trial.number}: {summary}")
        if not self.spec.keep_checkpoints:
            checkpoint.remove()
            with_dir = checkpoint.path.parent
            if with_dir.exists() and not any(with_dir.iterdir()):
                with_dir.rmdir()

    def _keep_best(self, result: FitResult, number: int) -> None:
        """The best trial's final weights stay in ARTIFACTS/STUDY/best/ (weights_only-loadable)."""
        best = self.artifacts / "best"
        best.mkdir(parents=True, exist_ok=True)
        Checkpoint(best / "model.pt").save(result.model.state_dict())
        (best / "config.json").write_text(json.dumps({"trial": number, **result.config.to_dict()}, indent=2) + "\n")


def _improves(study: optuna.Study, value: float) -> bool:
    try:
        best = study.best_value
    except ValueError:  # no complete trial yet
        return True
    return value < best if study.direction == optuna.study.StudyDirection.MINIMIZE else value > best
