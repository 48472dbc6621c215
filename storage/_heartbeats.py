"""Heartbeats as the store keeps them: who beat last, and failing the trials of workers that stopped.

Optuna keeps heartbeats in RDB stores only; journal files and the gRPC proxy have none."""

from __future__ import annotations

import functools
import logging
import threading
from datetime import datetime, timedelta

import optuna
import sqlalchemy

from ._errors import storage_errors
from ._experimental import optuna_experimental
from ._keys import StudyAttr
from ._open import Heartbeat, open_storage
from ._url import has_heartbeats

log = logging.getLogger(__name__)


_BEATS = sqlalchemy.text(
    "SELECT t.number, h.heartbeat FROM trial_heartbeats h JOIN trials t ON t.trial_id = h.trial_id "
    "JOIN studies s ON s.study_id = t.study_id WHERE s.study_name = :name")


def heartbeat_ages(storage: optuna.storages.BaseStorage, study_name: str) -> dict[int, timedelta]:
    """Trial number -> time since its worker's last heartbeat, by the database's clock (the one Optuna
    stamps heartbeats with, so no client clock or time zone skews it). Empty for stores without
    heartbeats (journal file, gRPC proxy, in memory); a database error is one StorageError."""
    engine = getattr(storage, "engine", None)
    if engine is None:
        return {}
    with storage_errors(str(engine.url)), engine.connect() as conn:
        now = _timestamp(conn.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar_one())
        rows = conn.execute(_BEATS, {"name": study_name}).all()
    return {number: max(now - _timestamp(beat), timedelta(0)) for number, beat in rows}


def _timestamp(value: datetime | str) -> datetime:
    """SQLite returns an untyped column as text ('2025-01-31 12:00:00.123456'), PostgreSQL a datetime;
    Optuna compares them without a time zone, and so do we."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=None)


def fail_stale(study: optuna.Study, url: str) -> optuna.Study:
    """Fail (and queue retries of) trials whose worker stopped beating. Workers do this when they start a
    trial; read commands do it too, so a study nobody works on any more does not show dead trials as running."""
    beat = study.user_attrs.get(StudyAttr.HEARTBEAT)
    if beat is None or not has_heartbeats(url):
        return study
    with storage_errors(url), optuna_experimental():
        watched = optuna.load_study(study_name=study.study_name, storage=_beating_storage(url, Heartbeat(**beat)))
        optuna.storages.fail_stale_trials(watched)
    return watched


@functools.cache
def _beating_storage(url: str, heartbeat: Heartbeat) -> optuna.storages.BaseStorage:
    """One storage (one connection pool) per heartbeat setting, however many studies are listed."""
    return open_storage(url, heartbeat)


class TrialBeats:
    """Heartbeats for the trials a packed worker holds RUNNING at once. Optuna beats only the one trial
    `study.optimize` runs; a worker that asks K trials beats them all from one thread, every interval,
    so none is judged stale while it trains. A store that does not answer is tried again next interval
    (the worker's own writes notice and handle a lost store)."""

    def __init__(self, study: optuna.Study) -> None:
        from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled

        storage = study._storage
        self.storage: BaseHeartbeat | None = storage if isinstance(storage, BaseHeartbeat) else None
        self.interval = (self.storage.get_heartbeat_interval()
                         if self.storage is not None and is_heartbeat_enabled(storage) else None)
        self.trial_ids: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, trial_id: int) -> None:
        """Beat now (a new trial has no heartbeat yet) and every interval until `discard`."""
        if self.interval is None or self.storage is None:
            return
        self.storage.record_heartbeat(trial_id)
        self.trial_ids.add(trial_id)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="adamtune-heartbeats", daemon=True)
            self._thread.start()

    def discard(self, trial_id: int) -> None:
        self.trial_ids.discard(trial_id)

    def _run(self) -> None:
        assert self.storage is not None
        while not self._stop.wait(self.interval):
            for trial_id in list(self.trial_ids):
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:  # a lost store: the next interval tries again
                    log.debug("heartbeat of trial id %s not recorded", trial_id, exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
