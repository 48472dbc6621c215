"""Create or join a study and work on it until the study-wide budget is spent."""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from storage import open_storage, storage_errors
from training import pick_device

from ._factories import build_pruner, build_sampler
from ._export import versions
from ._objective import Objective
from ._spec import StudyError, StudySpec

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass
class RunSummary:
    study: optuna.Study
    created: bool
    ran: int  # trials this worker finished
    seconds: float


def create_or_join(spec: StudySpec, storage: optuna.storages.BaseStorage) -> tuple[optuna.Study, bool]:
    """Create the study (and enqueue the baseline) or load it; safe when many workers race."""
    sampler, pruner = build_sampler(spec), build_pruner(spec)
    try:
        study = optuna.create_study(storage=storage, study_name=spec.name, sampler=sampler, pruner=pruner,
                                    direction=spec.direction)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner)
        _check_same_study(spec, study)
        return study, False
    study.set_user_attr("spec", spec.to_dict())
    study.set_user_attr("fingerprint", spec.fingerprint())
    study.set_user_attr("versions", versions())
    if spec.baseline:
        study.enqueue_trial(spec.space.baseline(), user_attrs={"baseline": True})
    return study, True


def _check_same_study(spec: StudySpec, study: optuna.Study) -> None:
    stored = study.user_attrs.get("fingerprint")
    if stored is None:
        raise StudyError(spec.source, "name", f"a study named {spec.name!r} exists but was not made by adamtune")
    if stored != spec.fingerprint():
        raise StudyError(spec.source, "name", f"study {spec.name!r} exists with a different dataset, model, "
                         "epochs, sampler, pruner or search space; rename the study or delete the old one")


def finished_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def run_study(spec: StudySpec, storage_url: str, *, n_trials: int | None = None, timeout: float | None = None,
              device: str | None = None, data_root: str | None = None, progress: bool = True) -> RunSummary:
    """Work on the study until it holds `n_trials` COMPLETE+PRUNED trials (from any worker) or `timeout`."""
    budget = n_trials or spec.n_trials
    timeout = timeout if timeout is not None else spec.timeout
    start = time.perf_counter()
    with storage_errors(storage_url):
        storage = open_storage(storage_url)
        study, created = create_or_join(spec, storage)
        already = finished_count(study)
        if already >= budget:
            return RunSummary(study, created, 0, time.perf_counter() - start)
        bar = _progress_bar(budget, already, spec.name, progress)
        best = _best_text(study)  # refreshed once per trial, not once per epoch
        objective = Objective(spec, pick_device(device), data_root,
                              on_epoch=lambda number, rec: bar.set_postfix_str(
                                  f"{best} | trial {number} epoch {rec.epoch + 1} val_loss {rec.val_loss:.4f}"))
        ran = 0

        def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            nonlocal ran, best
            ran += 1
            best = _best_text(study)
            bar.n = min(finished_count(study), budget)
            bar.set_postfix_str(best)

        callbacks = [optuna.study.MaxTrialsCallback(budget, states=FINISHED), after_trial]
        level = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(logging.WARNING)  # the bar replaces Optuna's per-trial log lines
        try:
            study.optimize(objective, timeout=timeout, callbacks=callbacks)
        finally:
            optuna.logging.set_verbosity(level)
            bar.close()
    return RunSummary(study, created, ran, time.perf_counter() - start)


def _best_text(study: optuna.Study) -> str:
    try:
        return f"best {study.best_value:.4f}"
    except ValueError:  # no finished trial yet
        return "best -"


def _progress_bar(total: int, initial: int, name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=name, unit="trial", disable=not enabled,
                file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
