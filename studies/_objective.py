"""The objective: trial -> sampled values -> training config -> the shared loop, reporting each epoch."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import torch

from adamtune.results import CURVE_KEYS, Attr, artifact_store, describe, upload_config, upload_curve, write_note
from adamtune.training import Dataset, DivergedError, EpochRecord, FitResult, fit, load_dataset
from adamtune.training.checkpoint import Checkpoint

from ._artifacts_dir import TrialFileError, check_artifacts_dir
from ._checkpoints import discard, trial_checkpoint
from ._spec import StudySpec

WORKER = f"{socket.gethostname()}:{os.getpid()}"


class TimedOut(KeyboardInterrupt):
    """The worker's --timeout passed while a trial trained: raised between epochs like Ctrl-C, so Optuna
    marks the trial FAIL; the worker then queues its retry and stops."""


class Objective:
    """Callable for `study.optimize`; the dataset is loaded once per worker process (or handed over by
    run_study, which loaded it before touching the store)."""

    def __init__(self, spec: StudySpec, device: torch.device, data_root: str | None = None,
                 on_epoch: Any = None, artifacts: str | None = None, data: Dataset | None = None) -> None:
        self.spec = spec
        self.device = device
        self.data = data if data is not None else load_dataset(spec.data_source, data_root, device)
        self.on_epoch = on_epoch  # progress display hook: (trial number, EpochRecord)
        root = Path(artifacts or spec.artifacts)
        self.root = check_artifacts_dir(root)
        self.artifacts = root / spec.name
        self.store = artifact_store(root)
        self.current: int | None = None  # trial number in progress, for clean-up after an interruption
        self.ended: Checkpoint | None = None  # the ended trial's checkpoint, removed once the store has its end
        self.deadline: float | None = None  # time.monotonic() past which this worker stops (--timeout)

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            return self._trial(trial)
        except OSError as exc:  # a checkpoint or artifact write on a full or read-only disk
            error = TrialFileError(trial.number, self.root, exc)
            with contextlib.suppress(Exception):  # the reason is a note; the store may be on the same disk
                trial.set_user_attr(Attr.FAIL_REASON, error.reason)
            raise error from exc

    def _trial(self, trial: optuna.Trial) -> float:
        self.current = trial.number
        self.ended = None  # not recorded: the previous trial's end never reached the store; its retry resumes
        # A retried trial (its worker died) continues the original: same seed, same checkpoint.
        frozen = next(t for t in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
                      if t.number == trial.number)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            origin = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen)
        origin = trial.number if origin is None else origin
        if origin != trial.number:
            trial.set_user_attr(Attr.RETRY_OF, origin)
        values = self.spec.space.sample(trial)
        config = self.spec.config_for(values, seed=self.spec.seed + origin)
        checkpoint = trial_checkpoint(self.artifacts, trial.study, origin)
        summary = describe(config.to_dict())
        trial.set_user_attr(Attr.WORKER, WORKER)
        write_note(trial, summary, self.spec.space.sampled(values))
        curve: dict[str, list] = {key: [] for key in CURVE_KEYS}

        def report(record: EpochRecord) -> None:
            for key in curve:
                curve[key].append(getattr(record, key))
            # One store write per epoch (the intermediate value; it is what pruners and the dashboard
            # read live); the full curve is written once, when the trial ends.
            trial.report(getattr(record, self.spec.objective), record.epoch)
            if self.on_epoch:
                self.on_epoch(trial.number, record)
            if trial.should_prune():
                trial.set_user_attr(Attr.PRUNED_REASON, f"pruner stopped it after epoch {record.epoch}")
                raise optuna.TrialPruned(f"pruned after epoch {record.epoch}")
            last = record.epoch + 1 >= config.epochs
            if self.deadline is not None and not last and time.monotonic() > self.deadline:
                raise TimedOut()  # between epochs: the retry resumes from the checkpoint just written

        def started(result: FitResult) -> None:
            trial.set_user_attr(Attr.DEVICE, result.device)
            trial.set_user_attr(Attr.PARAM_COUNT, result.param_count)

        try:
            result = fit(config, self.data, device=self.device, model_source=self.spec.model_source, params=values,
                         on_start=started, on_epoch=report, checkpoint=checkpoint)
        except DivergedError as exc:
            trial.set_user_attr(Attr.PRUNED_REASON, f"diverged: {exc}")
            self._finished(checkpoint, trial, curve, summary)
            raise optuna.TrialPruned(f"diverged: {exc}") from None
        except optuna.TrialPruned:
            self._finished(checkpoint, trial, curve, summary)
            raise
        # Anything else (interrupted, store lost) keeps the checkpoint so the retry resumes from it.
        record_result(trial, result.best_epoch, result.resumed_epochs)
        value = result.val_loss if self.spec.objective == "val_loss" else result.val_accuracy
        if _improves(trial.study, value):
            self._keep_best(result, trial.number)
            upload_config(trial, config.to_dict(), self.store)
        self._finished(checkpoint, trial, curve, summary)
        return value

    def _finished(self, checkpoint: Checkpoint, trial: optuna.Trial, curve: dict, summary: str) -> None:
        """A finished (complete or pruned) trial: its curve goes to the dashboard, its checkpoint away once
        the store has recorded the end (`recorded`)."""
        record_curve(trial, curve)
        if curve["val_loss"]:
            upload_curve(trial, curve, self.store, f"trial {trial.number}: {summary}")
        self.ended = checkpoint

    def recorded(self, _study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        """Study callback, run after the store took the trial's end: only now may its checkpoint go. Removed
        before, a server that went down during that write left the retry nothing to resume from."""
        if self.ended is not None and not self.spec.keep_checkpoints:
            discard(self.ended)
        self.ended = None

    def _keep_best(self, result: FitResult, number: int) -> None:
        """The best trial's final weights stay in ARTIFACTS/STUDY/best/ (weights_only-loadable)."""
        best = self.artifacts / "best"
        best.mkdir(parents=True, exist_ok=True)
        Checkpoint(best / "model.pt").save(result.model.state_dict())
        (best / "config.json").write_text(json.dumps({"trial": number, **result.config.to_dict()}, indent=2) + "\n")


def record_result(trial: optuna.Trial, best_epoch: int | None, resumed_epochs: int = 0) -> None:
    """What a complete trial adds to its record: the epoch whose weights were kept, and how many epochs a
    retry restored from its checkpoint instead of training."""
    trial.set_user_attr(Attr.BEST_EPOCH, best_epoch)
    if resumed_epochs:
        trial.set_user_attr(Attr.RESUMED_EPOCHS, resumed_epochs)


def record_curve(trial: optuna.Trial, curve: dict[str, list]) -> None:
    """The per-epoch curve, written once when the trial ends (the intermediate values are written live)."""
    trial.set_user_attr(Attr.CURVE, curve)


def _improves(study: optuna.Study, value: float) -> bool:
    try:
        best = study.best_value
    except ValueError:  # no complete trial yet
        return True
    return value < best if study.direction == optuna.study.StudyDirection.MINIMIZE else value > best
