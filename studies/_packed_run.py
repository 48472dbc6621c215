"""The packed worker as `work` drives it: a fresh `PackedWorker` for each stretch of work (after a lost
store, the trials it held are retried and a new pack starts), and what its own failures mean."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial
from sqlalchemy.exc import SQLAlchemyError

from ._artifacts_dir import TrialFileError, file_system_failure
from ._packed import PackedWorker
from ._retries import retry_trial
from ._work import Job, lost_store


class PackedRun:
    """The `Worker` of `run --pack K`: K trials at once; on a timeout, an interruption or an error every
    trial it holds is failed and its retry queued (each resumes from its last checkpoint)."""

    def __init__(self, job: Job, size: int, after_trial: Callable[[optuna.Study, FrozenTrial], None]) -> None:
        self.job, self.size, self.after_trial = job, size, after_trial
        self.worker: PackedWorker | None = None

    def run(self, deadline: float | None) -> None:
        job = self.job
        self.worker = PackedWorker(job.study, job.objective, job.spec, self.size, job.budget, self.after_trial)
        self.worker.run(deadline)

    def retry_held(self) -> list[int]:
        if self.worker is None:
            return []
        numbers = self.worker.unfinished()
        for number in numbers:
            retry_trial(self.job.study, number, self.job.spec)
            self.worker.live.pop(number)  # let go once retried: called again after an outage, not queued twice
        return numbers

    def timed_out(self, numbers: list[int]) -> str:
        return (f"the timeout passed during trials {numbers}: they were marked FAIL and their retries queued (each "
                "resumes from its last checkpoint); this worker stops")

    def failed(self, exc: Exception) -> BaseException | None:
        assert self.worker is not None, "only `run` raises"
        root = self.job.objective.root
        # A checkpoint or artifact write on a full or read-only disk (whatever it raised): every trial would fail.
        failure = None if isinstance(exc, (SQLAlchemyError, optuna.exceptions.OptunaError)) else \
            file_system_failure(root, exc)
        if failure is not None:
            numbers = self.worker.unfinished()
            error = TrialFileError(numbers[0] if numbers else -1, root, failure)
            self.worker.note_failure(error.reason)
            with contextlib.suppress(Exception):
                self.job.store.call(self.retry_held)
            raise error from exc
        lost = lost_store(exc)
        if lost is not None:
            return lost
        with contextlib.suppress(Exception):
            self.job.store.call(self.retry_held)
        raise exc
