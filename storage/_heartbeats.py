"""Who is still alive: each RUNNING trial's last heartbeat, read from Optuna's `trial_heartbeats`
table (Optuna has no public reader for it)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy

from ._open import storage_errors

_BEATS = sqlalchemy.text(
    "SELECT t.number, h.heartbeat FROM trial_heartbeats h JOIN trials t ON t.trial_id = h.trial_id "
    "JOIN studies s ON s.study_id = t.study_id WHERE s.study_name = :name")


def heartbeat_ages(storage, study_name: str) -> dict[int, timedelta]:
    """Trial number -> time since its worker's last heartbeat, by the database's clock (the one Optuna
    stamps heartbeats with, so no client clock or time zone skews it). Empty for stores without
    heartbeats (journal file, gRPC proxy, in memory); a database error is one StorageError."""
    engine = getattr(storage, "engine", None)
    if engine is None:
        return {}
    with storage_errors(storage.url), engine.connect() as conn:
        now = _timestamp(conn.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar_one())
        rows = conn.execute(_BEATS, {"name": study_name}).all()
    return {number: max(now - _timestamp(beat), timedelta(0)) for number, beat in rows}


def _timestamp(value: datetime | str) -> datetime:
    """SQLite returns an untyped column as text ('2025-01-31 12:00:00.123456'), PostgreSQL a datetime;
    Optuna compares them without a time zone, and so do we."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=None)
