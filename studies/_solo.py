"""A worker that trains one trial at a time through Optuna's own `study.optimize`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from adamtune.errors import StorageError
from adamtune.storage import Store

from ._artifacts_dir import TrialFileError
from ._objective import Objective
from ._retries import retry_interrupted
from ._spec import StudySpec
from ._work import Job, lost_store, store_failure

log = logging.getLogger("adamtune")


class SoloWorker:
    """The `Worker` of `run --pack 1`: `study.optimize` with the run's callbacks, its trial failed and
    retried by the objective's `current`."""

    def __init__(self, job: Job, callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]]) -> None:
        self.job, self.callbacks = job, list(callbacks)

    def run(self, deadline: float | None) -> None:
        self.job.objective.deadline = deadline
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        # Returns when the budget was reached (the callbacks stop the study) or the timeout passed.
        self.job.study.optimize(self.job.objective, timeout=remaining, callbacks=self.callbacks)

    def retry_held(self) -> list[int]:
        current = self.job.objective.current
        retry_interrupted(self.job.study, self.job.objective, self.job.spec)
        return [] if current is None else [current]

    def timed_out(self, numbers: list[int]) -> str:
        return (f"the timeout passed during trial {numbers[0] if numbers else None}: it was marked FAIL and its "
                "retry queued (it resumes from its last checkpoint); this worker stops")

    def failed(self, exc: Exception) -> BaseException | None:
        job, objective = self.job, self.job.objective
        if isinstance(exc, TrialFileError):  # the next trial would fail the same way: retry this one later, stop
            job.store.call(lambda: retry_interrupted(job.study, objective, job.spec))
            raise exc
        if _taken_over(objective, exc):
            log.warning("trial %s outlived its heartbeat grace period and was failed and retried by another "
                        "worker; going on with the next trial (raise heartbeat.grace_period if this repeats)",
                        objective.current)
            objective.current = None
            return None
        lost = lost_store(exc)
        if lost is not None:
            return lost
        failure = store_failure(exc)
        if isinstance(failure, (SQLAlchemyError, optuna.exceptions.StorageInternalError)):
            raise store_refused(failure, job.study, objective, job.spec, job.store) from None
        raise exc


def _taken_over(objective: Objective, exc: Exception) -> bool:
    """Another worker judged our trial stale (heartbeat missed for a grace period), failed it and
    queued its retry; Optuna then refuses our writes to it ("has already finished and can not be
    updated", or "Cannot tell a FAIL trial" when we report its result). Not this worker's failure."""
    if objective.current is None:
        return False
    return isinstance(exc, optuna.exceptions.UpdateFinishedTrialError) or (
        type(exc) is ValueError and str(exc).startswith("Cannot tell a "))


def store_refused(failure: BaseException, study: optuna.Study, objective: Objective, spec: StudySpec,
                  store: Store | str) -> StorageError:
    """A store error that waiting cannot fix (full disk, read-only database, a value it rejects): no
    new trials; mark the running one FAIL and queue its retry if the store still takes that write."""
    store = store if isinstance(store, Store) else Store(store)
    reason = f"study store {store.masked}: {store.describe(failure)}"
    number, trial = objective.current, None
    try:
        trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
        if trial is None or trial.state not in (TrialState.RUNNING, TrialState.FAIL):
            return StorageError(reason)
        retry_interrupted(study, objective, spec)
    except Exception:
        if trial is not None and trial.state == TrialState.FAIL:
            return StorageError(f"{reason}; trial {number} is FAIL and its retry could not be queued: make room for "
                                "the store (free its disk, make it writable), then run again: the next worker "
                                "queues the retry, which resumes from the trial's last checkpoint")
        return StorageError(f"{reason}; trial {number} is left RUNNING (the store refused to mark it FAIL): once its "
                            f"heartbeat is {spec.heartbeat.grace_period} s old, the next worker or `adamtune trials` "
                            "fails it and queues its retry")
    return StorageError(f"{reason}; trial {number} was marked FAIL and its retry queued")
