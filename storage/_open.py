"""Open the study store once per process, with engine options suited to long-running workers."""

from __future__ import annotations

import contextlib
from typing import Iterator

import optuna
from sqlalchemy.engine import make_url

from ._url import mask_url, redact


class StorageError(RuntimeError):
    """The store cannot be reached or used; the message never contains the password."""


def engine_options(url: str) -> dict:
    """SQLite waits for a busy writer; server databases pre-ping pooled connections and bound the pool."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return {"connect_args": {"timeout": 60}}
    return {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 2, "pool_recycle": 1800}


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An RDBStorage for `url` (tables created on first use); failures become StorageError."""
    with storage_errors(url):
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_options(url))


@contextlib.contextmanager
def storage_errors(url: str) -> Iterator[None]:
    """Turn SQLAlchemy/driver/Optuna store errors into one StorageError with the password removed."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:  # noqa: BLE001 - anything from the driver stack means "the store failed"
        from sqlalchemy.exc import SQLAlchemyError

        if not isinstance(exc, (SQLAlchemyError, optuna.exceptions.StorageInternalError, RuntimeError,
                                ValueError, ImportError, OSError)):
            raise
        message = redact(f"{type(exc).__name__}: {exc}".splitlines()[0], url)
        if "optuna storage upgrade" in str(exc) or "schema" in str(exc).lower() and "version" in str(exc).lower():
            message += f" (run `optuna storage upgrade --storage {mask_url(url)}` to upgrade the store)"
        raise StorageError(f"study store {mask_url(url)}: {message}") from None
