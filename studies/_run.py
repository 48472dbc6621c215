"""Create or join a study and work on it until the study-wide budget is spent, whatever happens to
this worker's connection or to other workers."""

from __future__ import annotations

import contextlib
import copy
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState
from sqlalchemy.exc import SQLAlchemyError

from adamtune.errors import InputError, StorageError
from adamtune.storage import (
    Attr,
    claim_retry,
    describe_error,
    for_packed_worker,
    is_store_error,
    mask_url,
    open_storage,
    optuna_experimental,
    redact,
    storage_errors,
    study_rows,
    with_reconnect,
)
from adamtune.training import pick_device

from ._artifacts_dir import TrialFileError, check_artifacts_dir, file_system_failure
from ._join import create_or_join
from ._objective import WORKER, Objective, TimedOut
from ._packed import PackedWorker
from ._prepare import prepare, probe_values
from ._quiet_failures import quiet_failures
from ._spec import StudySpec

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
log = logging.getLogger("adamtune")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so Optuna marks the running trial FAIL before the worker exits."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class RunSummary:
    study: optuna.Study
    created: bool
    ran: int  # trials this worker finished
    seconds: float


def finished_count(study: optuna.Study) -> int:
    """COMPLETE + PRUNED trials, what the study-wide budget counts: one GROUP BY on an RDB store, however
    many trials the study holds (Optuna's MaxTrialsCallback reads every trial after each one)."""
    counts = study_rows(study).counts()
    return counts["COMPLETE"] + counts["PRUNED"]


def run_study(spec: StudySpec, storage_url: str, *, n_trials: int | None = None, timeout: float | None = None,
              device: str | None = None, data_root: str | None = None, progress: bool = True,
              artifacts: str | None = None, on_ready: Callable[[StudySpec], None] | None = None,
              pack: int | None = None) -> RunSummary:
    """Work on the study until it holds `n_trials` COMPLETE+PRUNED trials (from any worker) or `timeout`.
    With `pack` (else the study's `pack`) above 1, train that many trials at once (studies/_packed.py).

    The data are loaded and checked (and the user's model built once) before the store is touched; then
    `on_ready` gets the spec with the data's facts.
    A lost database connection is waited out for `spec.reconnect_timeout` seconds; SIGTERM or Ctrl-C
    marks the running trial FAIL, enqueues its retry (which resumes from its checkpoint) and re-raises.
    """
    budget = n_trials or spec.n_trials
    timeout = timeout if timeout is not None else spec.timeout
    start = time.perf_counter()
    check_artifacts_dir(artifacts or spec.artifacts)  # a file in its place or a full disk: before the store
    dev = pick_device(device)
    spec, data = prepare(spec, device=dev, data_root=data_root)
    size = _pack_size(spec, pack if pack is not None else spec.pack, data, dev)
    if on_ready is not None:
        on_ready(spec)
    storage = with_reconnect(lambda: open_storage(storage_url, spec.heartbeat), storage_url, spec.reconnect_timeout)
    # K running trials are not re-read from the store on every ask; solo or packed, a trial's sampled values
    # are stored in one transaction: all or none, whenever the server goes down.
    storage = for_packed_worker(storage)
    with storage_errors(storage_url, opening=True):
        study, created = with_reconnect(lambda: create_or_join(spec, storage), storage_url, spec.reconnect_timeout)
    with storage_errors(storage_url):
        if finished_count(study) >= budget:
            return RunSummary(study, created, 0, time.perf_counter() - start)
        with_reconnect(lambda: _queue_owed_retries(study, spec), storage_url, spec.reconnect_timeout)
        bar = _progress_bar(budget, finished_count(study), spec.name, progress)
        best = _best_text(study)  # refreshed once per trial, not once per epoch
        objective = Objective(spec, dev, data=data, artifacts=artifacts,
                              on_epoch=lambda number, rec: bar.set_postfix_str(
                                  f"{best} | trial {number} epoch {rec.epoch + 1} val_loss {rec.val_loss:.4f}"))
        ran = 0

        def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            nonlocal ran, best
            ran += 1
            best = _best_text(study)
            bar.n = min(finished_count(study), budget)
            bar.set_postfix_str(best)
            if not progress:
                log.info("trial %d %s value=%s | %d/%d finished | %s", trial.number, trial.state.name.lower(),
                         trial.value, bar.n, budget, best)

        def stop_at_budget(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
            if bar.n >= budget:
                study.stop()

        callbacks = [objective.recorded, after_trial, stop_at_budget]
        level = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(logging.WARNING)  # the bar replaces Optuna's per-trial log lines
        try:
            with _signals_raise_interrupt(), quiet_failures(_stops_worker, is_store_error):
                if size > 1:
                    _optimize_packed(study, objective, after_trial, budget, timeout, spec, storage_url, size)
                else:
                    _optimize(study, objective, callbacks, budget, timeout, spec, storage_url)
        finally:
            optuna.logging.set_verbosity(level)
            bar.close()
    return RunSummary(study, created, ran, time.perf_counter() - start)


def _optimize(study, objective, callbacks, budget, timeout, spec, url) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    objective.deadline = deadline
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        try:
            study.optimize(objective, timeout=remaining, callbacks=callbacks)
            return  # the budget was reached (MaxTrialsCallback stopped it) or the timeout passed
        except TimedOut:
            number = objective.current
            _retry_interrupted(study, objective, spec)
            log.warning("the timeout passed during trial %s: it was marked FAIL and its retry queued (it resumes "
                        "from its last checkpoint); this worker stops", number)
            return
        except KeyboardInterrupt as exc:
            exc.trials_retried = [] if objective.current is None else [objective.current]  # type: ignore[attr-defined]
            _retry_interrupted(study, objective, spec)
            raise
        except TrialFileError:  # the next trial would fail the same way: retry this one later, stop
            with_reconnect(lambda: _retry_interrupted(study, objective, spec), url, spec.reconnect_timeout)
            raise
        except Exception as exc:
            if _taken_over(objective, exc):
                log.warning("trial %s outlived its heartbeat grace period and was failed and retried by another "
                            "worker; going on with the next trial (raise heartbeat.grace_period if this repeats)",
                            objective.current)
                objective.current = None
                continue
            failure = _store_failure(exc)
            if not is_store_error(failure):
                if isinstance(failure, (SQLAlchemyError, optuna.exceptions.StorageInternalError)):
                    raise _store_refused(failure, study, objective, spec, url) from None
                raise
            if _wait_out_lost_store(failure, study, lambda: _retry_interrupted(study, objective, spec),
                                    budget, spec, url):
                return


def _wait_out_lost_store(failure: BaseException, study: optuna.Study, retry_held: Callable[[], object],
                         budget: int, spec: StudySpec, url: str) -> bool:
    """The one answer of both worker loops to a lost store: wait for it (up to `reconnect_timeout`), then
    fail the trials this worker held and queue their retries (`retry_held`, called again until it succeeds);
    True when the budget is spent meanwhile, else the worker goes on."""
    log.warning("lost the study store (%s); waiting up to %.0f s for it",
                redact(describe_error(failure), url), spec.reconnect_timeout)
    with_reconnect(retry_held, url, spec.reconnect_timeout)
    return with_reconnect(lambda: finished_count(study), url, spec.reconnect_timeout) >= budget


def _pack_size(spec: StudySpec, size: int, data, device) -> int:
    """`size`, or 1 when the study's model cannot be stacked (said once, with the reason)."""
    if size <= 1:
        return 1
    from adamtune.training import unpackable

    values = probe_values(spec)[0]
    reason = unpackable(data, spec.config_for(values, seed=spec.seed), values, device=device,
                        model_source=spec.model_source)
    if reason:
        log.warning("model %s cannot be packed: %s; this worker trains one trial at a time", spec.model, reason)
        return 1
    return size


def _optimize_packed(study, objective, after_trial, budget, timeout, spec, url, size) -> None:
    """`_optimize` for a packed worker: on a timeout, an interruption or an error every trial it holds is
    failed and its retry queued (each resumes from its last checkpoint); a lost store is waited out as
    `_optimize` does, then a fresh pack goes on until the budget."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        worker = PackedWorker(study, objective, spec, size, budget, after_trial)

        def retry_all(worker: PackedWorker = worker) -> list[int]:
            numbers = worker.unfinished()
            for number in numbers:
                _retry_trial(study, number, spec)
                worker.live.pop(number)  # let go once retried: called again after an outage, not queued twice
            return numbers

        try:
            worker.run(deadline)
            return
        except TimedOut:
            numbers = retry_all()
            log.warning("the timeout passed during trials %s: they were marked FAIL and their retries queued (each "
                        "resumes from its last checkpoint); this worker stops", numbers)
            return
        except KeyboardInterrupt as exc:
            exc.trials_retried = retry_all()  # type: ignore[attr-defined]
            raise
        except Exception as exc:
            # A checkpoint or artifact write on a full or read-only disk (whatever it raised): every trial would fail.
            failure = None if isinstance(exc, (SQLAlchemyError, optuna.exceptions.OptunaError)) else \
                file_system_failure(objective.root, exc)
            if failure is not None:
                numbers = worker.unfinished()
                error = TrialFileError(numbers[0] if numbers else -1, objective.root, failure)
                worker.note_failure(error.reason)
                with contextlib.suppress(Exception):
                    with_reconnect(retry_all, url, spec.reconnect_timeout)
                raise error from exc
            lost = _store_failure(exc)
            if not is_store_error(lost):
                with contextlib.suppress(Exception):
                    with_reconnect(retry_all, url, spec.reconnect_timeout)
                raise
            if _wait_out_lost_store(lost, study, retry_all, budget, spec, url):
                return
        if deadline is not None and time.monotonic() >= deadline:
            return


def _taken_over(objective: Objective, exc: Exception) -> bool:
    """Another worker judged our trial stale (heartbeat missed for a grace period), failed it and
    queued its retry; Optuna then refuses our writes to it ("has already finished and can not be
    updated", or "Cannot tell a FAIL trial" when we report its result). Not this worker's failure."""
    if objective.current is None:
        return False
    return isinstance(exc, optuna.exceptions.UpdateFinishedTrialError) or (
        type(exc) is ValueError and str(exc).startswith("Cannot tell a "))


def _stops_worker(exc: BaseException) -> bool:
    """Failures the worker reports itself in one line as it stops (Optuna need not log them): a disk or
    store failure, and the timeout, SIGTERM or Ctrl-C that interrupts a trial (Optuna logs those with a
    traceback, as if the trial had crashed)."""
    reported = (TrialFileError, KeyboardInterrupt, InputError)  # InputError: a trial's model that cannot train
    return isinstance(exc, reported) or isinstance(_store_failure(exc), (SQLAlchemyError,
                                                                         optuna.exceptions.StorageInternalError))


def _store_failure(exc: BaseException) -> BaseException:
    """The store error behind `exc`: when Optuna cannot even record a failed trial's state, it raises
    `AssertionError("Should not reach.")` while handling the store error, and when it cannot read the trial
    back after a failed tell (the server is down), `UnboundLocalError` from `_run_trial`'s finally block;
    the store error is the real news."""
    if isinstance(exc, (AssertionError, UnboundLocalError)) and exc.__context__ is not None:
        return exc.__context__
    return exc


def _store_refused(failure: BaseException, study: optuna.Study, objective: Objective, spec: StudySpec,
                   url: str) -> StorageError:
    """A store error that waiting cannot fix (full disk, read-only database, a value it rejects): no
    new trials; mark the running one FAIL and queue its retry if the store still takes that write."""
    reason = f"study store {mask_url(url)}: {redact(describe_error(failure), url)}"
    number, trial = objective.current, None
    try:
        trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
        if trial is None or trial.state not in (TrialState.RUNNING, TrialState.FAIL):
            return StorageError(reason)
        _retry_interrupted(study, objective, spec)
    except Exception:
        if trial is not None and trial.state == TrialState.FAIL:
            return StorageError(f"{reason}; trial {number} is FAIL and its retry could not be queued: make room for "
                                "the store (free its disk, make it writable), then run again: the next worker "
                                "queues the retry, which resumes from the trial's last checkpoint")
        return StorageError(f"{reason}; trial {number} is left RUNNING (the store refused to mark it FAIL): once its "
                            f"heartbeat is {spec.heartbeat.grace_period} s old, the next worker or `adamtune trials` "
                            "fails it and queues its retry")
    return StorageError(f"{reason}; trial {number} was marked FAIL and its retry queued")


def _retry_interrupted(study: optuna.Study, objective: Objective, spec: StudySpec) -> None:
    """Mark this worker's unfinished trial FAIL and enqueue its retry, as a heartbeat would later. The trial
    is let go only once that is done: called again by `with_reconnect` after the store was unreachable, it
    must try again, not find nothing to do and leave the trial RUNNING (seen with PostgreSQL stopped)."""
    if objective.current is None:
        return
    _retry_trial(study, objective.current, spec)
    objective.current = None


def _queue_owed_retries(study: optuna.Study, spec: StudySpec) -> None:
    """Queue the retry of every FAIL trial that has none and fewer than `max_retry` retries behind it: its
    worker failed it but the store refused the retry (a full disk takes the small FAIL write, not the new
    trial), or the worker died in between. Each starting worker looks, so nothing failed is lost; a trial
    whose model was refused at its values is not retried (it would fail the same way), and of workers
    starting together only the first to claim a trial queues its retry."""
    everything = study.get_trials(deepcopy=False)
    retried = {t.system_attrs["retry_history"][-1] for t in everything if t.system_attrs.get("retry_history")}
    for trial in everything:
        history = trial.system_attrs.get("retry_history", [])
        if (trial.state == TrialState.FAIL and trial.number not in retried and not trial.user_attrs.get(Attr.REFUSED)
                and len(history) < spec.heartbeat.max_retry and claim_retry(study, trial._trial_id, WORKER)):
            _retry_trial(study, trial.number, spec)
            log.warning("trial %d is FAIL and its retry was never queued: queued now", trial.number)


def _retry_trial(study: optuna.Study, number: int, spec: StudySpec) -> None:
    """Mark trial `number` FAIL (unless it is already) and enqueue its retry, as a heartbeat would later."""
    trial = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    if trial.state == TrialState.RUNNING:  # Optuna could not write FAIL while the store was down
        study.tell(number, state=TrialState.FAIL)
        trial = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    if trial.state == TrialState.FAIL:
        trial = copy.copy(trial)  # the retry starts without the failed run's reason
        trial.user_attrs = {k: v for k, v in trial.user_attrs.items() if k != Attr.FAIL_REASON}
        with optuna_experimental():
            optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=spec.heartbeat.max_retry)(study, trial)


@contextlib.contextmanager
def _signals_raise_interrupt() -> Iterator[None]:
    def handler(signum, _frame):
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _best_text(study: optuna.Study) -> str:
    try:
        return f"best {study.best_value:.4f}"
    except ValueError:  # no finished trial yet
        return "best -"


def _progress_bar(total: int, initial: int, name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=name, unit="trial", disable=not enabled,
                file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
