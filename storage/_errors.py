"""Store errors as adamtune errors: one StorageError with the password removed, and which of them mean
"the database is unreachable", the only kind worth waiting out."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import optuna

from adamtune.errors import AdamtuneError, StorageError

from ._transient import describe_error, is_connection_lost
from ._url import mask_url, redact


@contextlib.contextmanager
def storage_errors(url: str, opening: bool = False) -> Iterator[None]:
    """Turn SQLAlchemy/driver/Optuna store errors into one StorageError with the password removed.
    While `opening`, also the errors opening a store raises (bad URL, missing driver, old schema,
    unreadable journal file); later, those mean something else and propagate unchanged. adamtune's own
    errors (a study that exists with other data, say: an InputError, hence a ValueError) pass unchanged."""
    try:
        yield
    except AdamtuneError:  # already one line with its own exit code (a refused join is bad input, not the store)
        raise
    except Exception as exc:
        from sqlalchemy.exc import SQLAlchemyError

        kinds: tuple[type[Exception], ...] = (SQLAlchemyError, optuna.exceptions.StorageInternalError)
        if opening:
            kinds += (RuntimeError, ValueError, ImportError, OSError)
        if not isinstance(exc, kinds):
            raise
        text = str(exc)
        message = redact(describe_error(exc), url)  # the driver's reason, not Optuna's wrapper's
        if "optuna storage upgrade" in text:
            message = (f"the store was created by another Optuna version and its schema is out of date; "
                       f"run `optuna storage upgrade --storage {mask_url(url)}`")
        raise StorageError(f"study store {mask_url(url)}: {message}", transient=is_store_error(exc)) from None


def is_store_error(exc: BaseException) -> bool:
    """Errors that mean "the database is unreachable or the connection broke", worth waiting out."""
    if isinstance(exc, StorageError):
        return exc.transient
    return is_connection_lost(exc)
