"""Create or join a study and work on it until the study-wide budget is spent, whatever happens to
this worker's connection or to other workers."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna

from adamtune.storage import Store, is_store_error
from adamtune.training import pick_device

from ._artifacts_dir import check_artifacts_dir
from ._join import create_or_join
from ._objective import Objective
from ._pack_size import pack_size
from ._packed_run import PackedRun
from ._prepare import prepare
from ._quiet_failures import quiet_failures
from ._retries import queue_owed_retries
from ._solo import SoloWorker
from ._spec import StudySpec
from ._warm_start import warm_start_trials
from ._work import Job, finished_count, signals_raise_interrupt, stops_worker, work

log = logging.getLogger("adamtune")


@dataclass
class RunSummary:
    study: optuna.Study
    created: bool
    ran: int  # trials this worker finished
    seconds: float


def run_study(spec: StudySpec, store: Store | str, *, n_trials: int | None = None, timeout: float | None = None,
              device: str | None = None, data_root: str | None = None, progress: bool = True,
              artifacts: str | None = None, on_ready: Callable[[StudySpec], None] | None = None,
              pack: int | str | None = None) -> RunSummary:
    """Work on the study until it holds `n_trials` COMPLETE+PRUNED trials (from any worker) or `timeout`.
    With `pack` (else the study's `pack`: `auto` unless it says) above 1, train that many trials at once
    (studies/_packed.py; `auto` chooses how many: studies/_pack_size.py).
    `store` is the resolved `Store` (a URL is taken as it is).

    The data are loaded and checked (and the user's model built once), and a warm start's sources read,
    before the store is touched; then `on_ready` gets the spec with the data's facts.
    A lost database connection is waited out for `spec.reconnect_timeout` seconds; SIGTERM or Ctrl-C
    marks the running trial FAIL, enqueues its retry (which resumes from its checkpoint) and re-raises.
    """
    budget = n_trials or spec.n_trials
    timeout = timeout if timeout is not None else spec.timeout
    start = time.perf_counter()
    check_artifacts_dir(artifacts or spec.artifacts)  # a file in its place or a full disk: before the store
    dev = pick_device(device)
    spec, data = prepare(spec, device=dev, data_root=data_root)
    size, chosen = pack_size(spec, pack if pack is not None else spec.pack, budget, data, dev)
    store = (store if isinstance(store, Store) else Store(store)).for_worker(spec.heartbeat, spec.reconnect_timeout)
    warm = warm_start_trials(spec, store.url)  # a missing or malformed source stops us before the store is touched
    if on_ready is not None:
        on_ready(spec)
    store.call(store.open)
    with store.errors(opening=True):
        study, created = store.call(lambda: create_or_join(spec, store.opened, warm))
    with store.errors():
        if finished_count(study) >= budget:
            return RunSummary(study, created, 0, time.perf_counter() - start)
        if chosen is not None:  # said once there is work: a refused study, or a spent one, never had a pack
            log.warning("%s", chosen)
        store.call(lambda: queue_owed_retries(study, spec))
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

        job = Job(study, store, spec, objective, budget)
        worker = PackedRun(job, size, after_trial) if size > 1 else \
            SoloWorker(job, [objective.recorded, after_trial, stop_at_budget])
        level = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(logging.WARNING)  # the bar replaces Optuna's per-trial log lines
        try:
            with signals_raise_interrupt(), quiet_failures(stops_worker, is_store_error):
                work(worker, job, None if timeout is None else time.monotonic() + timeout)
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
