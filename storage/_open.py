"""Open the study store once per process, with engine options suited to long-running workers.

URLs: any SQLAlchemy URL (sqlite:///, postgresql+psycopg://, mysql+pymysql://) for RDBStorage,
`journal:///path/study.log` for Optuna's file journal (safe for many processes on one machine) and
`grpc://host:port` for a storage proxy started with `adamtune storage-proxy`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import optuna
from sqlalchemy.engine import make_url

from ._errors import storage_errors
from ._experimental import optuna_experimental
from ._stale import RDBStore

APPLICATION_NAME = "adamtune"  # PostgreSQL shows it in pg_stat_activity


@dataclass(frozen=True)
class Heartbeat:
    """A live worker beats every `interval` s; a RUNNING trial silent for `grace_period` s is failed
    by the next worker that starts a trial and retried (same parameters) up to `max_retry` times."""

    interval: int = 10
    grace_period: int = 60
    max_retry: int = 3


def engine_options(url: str) -> dict[str, Any]:
    """SQLite waits for a busy writer; server databases pre-ping pooled connections and bound the pool,
    so 50 workers hold at most 200 connections and a dropped connection is replaced, not raised."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return {"connect_args": {"timeout": 60}}
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 2, "pool_recycle": 1800}
    if backend == "postgresql":
        options["connect_args"] = {"application_name": APPLICATION_NAME, "connect_timeout": 10}
    return options


def open_storage(url: str, heartbeat: Heartbeat | None = None) -> optuna.storages.BaseStorage:
    """The storage for `url` (tables created on first use); failures become StorageError."""
    with storage_errors(url, opening=True), optuna_experimental():  # heartbeats, the file journal
        if url.startswith("journal://"):
            return _journal(url)
        if url.startswith("grpc://"):
            return _grpc(url)
        beat: dict[str, Any] = {}
        if heartbeat is not None:
            beat = dict(heartbeat_interval=heartbeat.interval, grace_period=heartbeat.grace_period,
                        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                            max_retry=heartbeat.max_retry))
        for attempt in range(3):
            try:
                return RDBStore(url, engine_kwargs=engine_options(url), **beat)  # + trials that never beat
            except Exception as exc:
                if not _lost_the_race_to_create_tables(exc) or attempt == 2:
                    raise
                time.sleep(0.5 * (attempt + 1))  # the winner is still creating; the next try finds its tables
        raise AssertionError("unreachable: the last attempt returns or raises")


def _lost_the_race_to_create_tables(exc: BaseException) -> bool:
    """Workers that open a new store at once each check for Optuna's tables and create the missing ones;
    the loser's CREATE meets the winner's table. PostgreSQL says so with ProgrammingError or
    IntegrityError, SQLite and MySQL with OperationalError "... already exists"."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    if isinstance(exc, (IntegrityError, ProgrammingError)):
        return True
    return isinstance(exc, OperationalError) and "already exists" in str(exc.orig)


def _journal(url: str) -> optuna.storages.BaseStorage:
    from optuna.storages.journal import JournalFileBackend

    path = url[len("journal://"):]
    if not path:
        raise ValueError("journal URL needs a file: journal:///absolute/path/study.log")
    return optuna.storages.JournalStorage(JournalFileBackend(path))


def _grpc(url: str) -> optuna.storages.BaseStorage:
    parsed = make_url(url)
    return optuna.storages.GrpcStorageProxy(host=parsed.host or "localhost", port=parsed.port or 13000)
