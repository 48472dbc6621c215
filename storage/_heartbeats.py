"""Heartbeats as the store keeps them: who beat last, and failing the trials of workers that stopped.

Optuna keeps heartbeats in RDB stores only; journal files and the gRPC proxy have none."""

from __future__ import annotations

import functools
import warnings
from datetime import datetime

import optuna
import sqlalchemy

from ._errors import storage_errors
from ._open import Heartbeat, open_storage
from ._url import has_heartbeats

HEARTBEAT_ATTR = "heartbeat"  # the study user attr holding its Heartbeat settings


def last_heartbeats(url: str, study_name: str) -> dict[int, datetime]:
    """Trial number -> its worker's last heartbeat (naive UTC), read from Optuna's trial_heartbeats table
    (Optuna has no public reader for it); empty for stores without heartbeats."""
    if not has_heartbeats(url):
        return {}
    engine = getattr(open_storage(url), "engine", None)
    if engine is None:
        return {}
    query = sqlalchemy.text(
        "SELECT t.number, h.heartbeat FROM trial_heartbeats h JOIN trials t ON t.trial_id = h.trial_id "
        "JOIN studies s ON s.study_id = t.study_id WHERE s.study_name = :name")
    with storage_errors(url), engine.connect() as conn:
        return {number: _as_datetime(beat) for number, beat in conn.execute(query, {"name": study_name})}


def _as_datetime(value: datetime | str) -> datetime:
    """SQLite hands timestamps back as text; PostgreSQL as datetime."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def fail_stale(study: optuna.Study, url: str) -> optuna.Study:
    """Fail (and queue retries of) trials whose worker stopped beating. Workers do this when they start a
    trial; read commands do it too, so a study nobody works on any more does not show dead trials as running."""
    beat = study.user_attrs.get(HEARTBEAT_ATTR)
    if beat is None or not has_heartbeats(url):
        return study
    with storage_errors(url), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        watched = optuna.load_study(study_name=study.study_name, storage=_beating_storage(url, Heartbeat(**beat)))
        optuna.storages.fail_stale_trials(watched)
    return watched


@functools.lru_cache(maxsize=None)
def _beating_storage(url: str, heartbeat: Heartbeat) -> optuna.storages.BaseStorage:
    """One storage (one connection pool) per heartbeat setting, however many studies are listed."""
    return open_storage(url, heartbeat)
