"""What every worker does the same way, solo or packed: stop at the timeout, at SIGTERM or Ctrl-C, and wait
out a lost store, each time failing the trials it holds and queueing their retries (each resumes from its
last checkpoint). A worker kind says only how it trains and what its own failures mean (`Worker`)."""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import optuna
from sqlalchemy.exc import SQLAlchemyError

from adamtune.errors import InputError
from adamtune.storage import Store, is_store_error, study_rows

from ._artifacts_dir import TrialFileError
from ._objective import Objective, TimedOut
from ._spec import StudySpec

log = logging.getLogger("adamtune")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so Optuna marks the running trial FAIL before the worker exits."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class Job:
    """What a worker works with: the study and its store (whose `call` waits out a lost connection), the
    spec, the objective that trains one trial, and the study-wide budget of COMPLETE+PRUNED trials."""

    study: optuna.Study
    store: Store
    spec: StudySpec
    objective: Objective
    budget: int


class Worker(Protocol):
    """One kind of worker (`SoloWorker`, `PackedRun`), driven by `work`."""

    def run(self, deadline: float | None) -> None:
        """Train trials until the budget is spent or `deadline` (time.monotonic()) passes; `TimedOut` when
        it passes during a trial."""

    def retry_held(self) -> list[int]:
        """Fail every trial this worker holds RUNNING and queue its retry, then let it go (so a call again
        after an outage queues nothing twice); the trial numbers."""

    def timed_out(self, numbers: list[int]) -> str:
        """The warning logged when the timeout passed during trials `numbers` (retried already)."""

    def failed(self, exc: Exception) -> BaseException | None:
        """`run` raised `exc`: raises what stops this worker (after failing and retrying what it must);
        returns the store error behind `exc` when the store was lost, None when the worker goes on."""


def work(worker: Worker, job: Job, deadline: float | None) -> None:
    """Run `worker` until the budget or the deadline, and answer the timeout, an interruption and a lost store."""
    while True:
        try:
            worker.run(deadline)
            return  # the budget was reached or the timeout passed between trials
        except TimedOut:
            log.warning(worker.timed_out(worker.retry_held()))
            return
        except KeyboardInterrupt as exc:
            exc.trials_retried = worker.retry_held()  # type: ignore[attr-defined]
            raise
        except Exception as exc:
            lost = worker.failed(exc)
            if lost is not None and _wait_out_lost_store(lost, worker, job):
                return
        if deadline is not None and time.monotonic() >= deadline:
            return


def _wait_out_lost_store(failure: BaseException, worker: Worker, job: Job) -> bool:
    """The one answer to a lost store: wait for it (up to `reconnect_timeout`), then fail the trials this
    worker held and queue their retries (tried again until it succeeds); True when the budget is spent
    meanwhile, else the worker goes on."""
    log.warning("lost the study store (%s); waiting up to %.0f s for it",
                job.store.describe(failure), job.store.reconnect_timeout)
    job.store.call(worker.retry_held)
    return job.store.call(lambda: finished_count(job.study)) >= job.budget


def finished_count(study: optuna.Study) -> int:
    """COMPLETE + PRUNED trials, what the study-wide budget counts: one GROUP BY on an RDB store, however
    many trials the study holds (Optuna's MaxTrialsCallback reads every trial after each one)."""
    counts = study_rows(study).counts()
    return counts["COMPLETE"] + counts["PRUNED"]


def lost_store(exc: BaseException) -> BaseException | None:
    """The store error behind `exc` when it means the store was lost (worth waiting out), else None."""
    failure = store_failure(exc)
    return failure if is_store_error(failure) else None


def store_failure(exc: BaseException) -> BaseException:
    """The store error behind `exc`: when Optuna cannot even record a failed trial's state, it raises
    `AssertionError("Should not reach.")` while handling the store error, and when it cannot read the trial
    back after a failed tell (the server is down), `UnboundLocalError` from `_run_trial`'s finally block;
    the store error is the real news."""
    if isinstance(exc, (AssertionError, UnboundLocalError)) and exc.__context__ is not None:
        return exc.__context__
    return exc


def stops_worker(exc: BaseException) -> bool:
    """Failures the worker reports itself in one line as it stops (Optuna need not log them): a disk or
    store failure, and the timeout, SIGTERM or Ctrl-C that interrupts a trial (Optuna logs those with a
    traceback, as if the trial had crashed)."""
    reported = (TrialFileError, KeyboardInterrupt, InputError)  # InputError: a trial's model that cannot train
    return isinstance(exc, reported) or isinstance(store_failure(exc), (SQLAlchemyError,
                                                                        optuna.exceptions.StorageInternalError))


@contextlib.contextmanager
def signals_raise_interrupt() -> Iterator[None]:
    def handler(signum, _frame):
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
