"""The objective: trial -> sampled values -> training config -> the shared loop, reporting each epoch."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import optuna
import torch
from sqlalchemy.exc import SQLAlchemyError

from adamtune.data import Dataset, load_dataset
from adamtune.errors import InputError
from adamtune.results import (
    CURVE_KEYS,
    announce_curve,
    artifact_store,
    curve_to_store,
    describe,
    upload_config,
    write_note,
)
from adamtune.storage import Attr, optuna_experimental, write_pending
from adamtune.training import Checkpoint, DivergedError, EpochRecord, FitResult, TrainConfig, fit

from ._artifacts_dir import TrialFileError, check_artifacts_dir, file_system_failure
from ._checkpoints import best_dir, discard, trial_checkpoint
from ._spec import StudySpec

WORKER = f"{socket.gethostname()}:{os.getpid()}"


class TimedOut(KeyboardInterrupt):
    """The worker's --timeout passed while a trial trained: raised between epochs like Ctrl-C, so Optuna
    marks the trial FAIL; the worker then queues its retry and stops."""


@dataclass
class TrialPlan:
    """One trial as the objective runs it, solo or in a pack."""

    trial: optuna.Trial
    origin: int  # the trial a retry continues (its seed and checkpoint); its own number otherwise
    values: dict[str, Any]
    config: TrainConfig
    checkpoint: Checkpoint
    summary: str
    curve: dict[str, list] = field(default_factory=lambda: {key: [] for key in CURVE_KEYS})


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
        self.ended: dict[int, Checkpoint] = {}  # ended trials' checkpoints, each removed once the store has its end
        self.deadline: float | None = None  # time.monotonic() past which this worker stops (--timeout)

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            return self._trial(trial)
        except (optuna.TrialPruned, optuna.exceptions.OptunaError, SQLAlchemyError):
            raise  # a decision, or the store's own failure (its disk is the store's business)
        except InputError as exc:  # the model at this trial's values cannot train (its output shape, ...)
            refuse(trial, exc)
            raise
        except Exception as exc:  # a checkpoint or artifact write on a full or read-only disk?
            failure = file_system_failure(self.root, exc)
            if failure is None:
                raise
            error = TrialFileError(trial.number, self.root, failure)
            with contextlib.suppress(Exception):  # the reason is a note; the store may be on the same disk
                trial.set_user_attr(Attr.FAIL_REASON, error.reason)
            raise error from exc

    def _trial(self, trial: optuna.Trial) -> float:
        plan = self.begin(trial)
        config = plan.config

        def report(record: EpochRecord) -> None:
            self.epoch_done(plan, record)
            if self.deadline is not None and not record.last and time.monotonic() > self.deadline:
                raise TimedOut()  # between epochs: fit saves its checkpoint first, the retry resumes from it

        try:
            result = fit(config, self.data, device=self.device, model_source=self.spec.model_source,
                         params=plan.values, on_start=lambda r: self.started(plan, r), on_epoch=report,
                         checkpoint=plan.checkpoint, checkpoint_every=self.spec.checkpoint_every,
                         scoring=self.spec.scoring)
        except DivergedError as exc:
            self.diverged(plan, exc)
        except optuna.TrialPruned:
            self.finish(plan)
            raise
        # Anything else (interrupted, store lost) keeps the checkpoint so the retry resumes from it.
        return self.complete(plan, result)

    def begin(self, trial: optuna.Trial) -> TrialPlan:
        """Everything a trial is before it trains: sampled values, config, seed, checkpoint, note."""
        self.current = trial.number
        # A retried trial (its worker died) continues the original: same seed, same checkpoint.
        frozen = trial.storage.get_trial(trial._trial_id)  # this trial alone, not every running one
        with optuna_experimental():
            origin = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen)
        origin = trial.number if origin is None else origin
        if origin != trial.number:
            trial.set_user_attr(Attr.RETRY_OF, origin)
        values = self.spec.space.sample(trial)
        config = self.spec.config_for(values, seed=self.spec.seed + origin)
        checkpoint = trial_checkpoint(self.artifacts, trial.study, origin)
        summary = describe(config.to_dict())
        trial.set_user_attr(Attr.WORKER, WORKER)
        write_note(trial, summary, self.spec.space.sampled(values), frozen.user_attrs.get(Attr.WARM_START))
        return TrialPlan(trial, origin, values, config, checkpoint, summary)

    def epoch_done(self, plan: TrialPlan, record: EpochRecord) -> None:
        """One epoch's record: onto the curve, to the trial (and pruner); raises TrialPruned when it says so,
        except after the run's last epoch (`record.last`: its epochs, or early stopping, end it): a finished
        run is never thrown away."""
        trial = plan.trial
        for key in plan.curve:
            plan.curve[key].append(getattr(record, key))
        # One store write per epoch (the intermediate value; it is what pruners and the dashboard
        # read live); the full curve is written once, when the trial ends.
        trial.report(_reported(record.value(self.spec.objective), self.spec.objective), record.epoch)
        if self.on_epoch:
            self.on_epoch(trial.number, record)
        if not record.last and trial.should_prune():  # a run that trained to its end completes
            trial.set_user_attr(Attr.PRUNED_REASON, f"pruner stopped it after epoch {record.epoch}")
            raise optuna.TrialPruned(f"pruned after epoch {record.epoch}")

    def started(self, plan: TrialPlan, result: FitResult) -> None:
        """Training starts: the trial's values and start attributes (worker, device, ...) reach the store
        in one transaction, before its first epoch."""
        plan.trial.set_user_attr(Attr.DEVICE, result.device)
        plan.trial.set_user_attr(Attr.PARAM_COUNT, result.param_count)
        write_pending(plan.trial)

    def diverged(self, plan: TrialPlan, exc: DivergedError) -> NoReturn:
        """A NaN or infinite loss: the trial is pruned with the reason (not failed: a retry diverges again)."""
        plan.trial.set_user_attr(Attr.PRUNED_REASON, f"diverged: {exc}")
        self.finish(plan)
        raise optuna.TrialPruned(f"diverged: {exc}") from None

    def complete(self, plan: TrialPlan, result: FitResult) -> float:
        """A trial that trained to its end: its record, best weights when it leads; returns its value."""
        trial = plan.trial
        record_result(trial, result.best_epoch, result.resumed_epochs)
        value = _reported(result.value(self.spec.objective), self.spec.objective)
        if _improves(trial.study, value):
            self._keep_best(result, trial)
            upload_config(trial, plan.config.to_dict(), self.store)
        self.finish(plan)
        return value

    def finish(self, plan: TrialPlan) -> None:
        """A finished (complete or pruned) trial: its curve goes to the store, with the meta of its PNG, which
        the dashboard draws from it when someone opens it; its checkpoint goes once the store has recorded
        the end (`recorded`)."""
        record_curve(plan.trial, plan.curve, self.spec.objective)
        if plan.curve["val_loss"]:
            announce_curve(plan.trial, plan.curve, self.store, f"trial {plan.trial.number}: {plan.summary}")
        self.ended[plan.trial.number] = plan.checkpoint

    def recorded(self, _study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Study callback (and the packed worker's, after each tell), run after the store took the trial's
        end: only now may its checkpoint go. Removed before, a server that went down during that write left
        the retry nothing to resume from."""
        checkpoint = self.ended.pop(trial.number, None)
        if checkpoint is not None and not self.spec.keep_checkpoints:
            discard(checkpoint)

    def _keep_best(self, result: FitResult, trial: optuna.Trial) -> None:
        """The best trial's final weights stay in ARTIFACTS/STUDY/best/UID/ (weights_only-loadable), keyed by
        the study's uid like its checkpoints: a namesake study in another store keeps its own."""
        best = best_dir(self.artifacts, trial.study)
        best.mkdir(parents=True, exist_ok=True)
        Checkpoint(best / "model.pt").save(result.model.state_dict())
        (best / "config.json").write_text(json.dumps({"trial": trial.number, **result.config.to_dict()}, indent=2)
                                          + "\n")


def refuse(trial: optuna.Trial, exc: InputError) -> None:
    """A trial whose model cannot train at its values: the one line the worker stops with is its stored
    fail reason (Optuna marks it FAIL), never a COMPLETE trial with a meaningless loss."""
    with contextlib.suppress(Exception):  # the reason is a note; the store may be what failed next
        trial.set_user_attr(Attr.FAIL_REASON, str(exc))
        trial.set_user_attr(Attr.REFUSED, True)


def record_result(trial: optuna.Trial, best_epoch: int | None, resumed_epochs: int = 0) -> None:
    """What a complete trial adds to its record: the epoch whose weights were kept, and how many epochs a
    retry restored from its checkpoint instead of training."""
    trial.set_user_attr(Attr.BEST_EPOCH, best_epoch)
    if resumed_epochs:
        trial.set_user_attr(Attr.RESUMED_EPOCHS, resumed_epochs)


def record_curve(trial: optuna.Trial, curve: dict[str, list], objective: str) -> None:
    """The per-epoch curve, written once when the trial ends; the objective's series is not repeated in it
    (it is the intermediate values, written live)."""
    trial.set_user_attr(Attr.CURVE, curve_to_store(curve, objective))


def _reported(value: float | None, objective: str) -> float:
    """The objective's value of an epoch: a metric that cannot be computed on the validation split (ROC AUC of
    a split holding one class) is the user's data problem, said as one line, never a NaN a sampler learns from."""
    if value is None or value != value:
        from adamtune.training import MetricError

        raise MetricError("validation split", objective, f"cannot be computed (got {value}); ROC AUC needs "
                          "every class there: give a validation part holding each class")
    return value


def _improves(study: optuna.Study, value: float) -> bool:
    try:
        best = study.best_value
    except ValueError:  # no complete trial yet
        return True
    return value < best if study.direction == optuna.study.StudyDirection.MINIMIZE else value > best
