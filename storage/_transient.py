"""Which store errors are worth waiting out: only a database that cannot be reached or a connection
that broke. A full disk, a read-only database, a constraint violation or a bad value fails the same
way however long a worker waits, so it must fail at once with its real reason.

The real reason is the driver's exception: Optuna wraps SQLAlchemy's error in StorageInternalError
(`raise ... from e`, so it is the `__cause__`), and SQLAlchemy keeps the driver's in `.orig`. An error
raised while handling the real one has it as its `__context__` instead: Optuna's trial read takes every
OperationalError for "too many SQL variables" and queries again on the same broken session, which raises
PendingRollbackError while handling the lost connection.
"""

from __future__ import annotations

import sqlite3
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.exc import DBAPIError

# SQLite result codes (the primary code is the low byte of the extended one): another connection holds the lock.
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
# PostgreSQL SQLSTATEs besides class 08 (connection exception): the server is shutting down, crashed or still
# starting, has no free connection slot, or rolled the transaction back because of a concurrent one.
_POSTGRES_TRANSIENT = {"57P01", "57P02", "57P03", "53300", "40001", "40P01"}


def _behind(exc: BaseException) -> BaseException | None:
    """The exception `exc` was raised from, or while handling (unless hidden with `from None`)."""
    if exc.__cause__ is not None:
        return exc.__cause__
    return None if exc.__suppress_context__ else exc.__context__


def _database_error(exc: BaseException) -> DBAPIError | None:
    """The first SQLAlchemy DBAPIError behind `exc` (itself included), or None."""
    from sqlalchemy.exc import DBAPIError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, DBAPIError):
            return current
        seen.add(id(current))
        current = _behind(current)
    return None


def driver_error(exc: BaseException) -> BaseException:
    """The driver's exception behind `exc` (along `__cause__`, `__context__` and SQLAlchemy's `.orig`);
    with no database error behind it, the innermost exception along explicit `raise ... from` links."""
    wrapper = _database_error(exc)
    if wrapper is not None and wrapper.orig is not None:
        return wrapper.orig
    seen: set[int] = set()
    while id(exc) not in seen and exc.__cause__ is not None:
        seen.add(id(exc))
        exc = exc.__cause__
    return exc


def is_connection_lost(exc: BaseException) -> bool:
    """True when the database is unreachable or the connection broke: waiting may help."""
    from sqlalchemy.exc import OperationalError

    wrapper = _database_error(exc)
    if wrapper is not None and wrapper.connection_invalidated:
        return True
    orig = driver_error(exc)
    driver = sys.modules.get(type(orig).__module__.split(".")[0])
    if driver is sqlite3:
        return getattr(orig, "sqlite_errorcode", 0) & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    if driver is not None and driver.__name__ in ("psycopg", "psycopg2"):
        state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if state is None:  # raised by libpq itself: could not connect, server closed the connection
            return isinstance(orig, driver.OperationalError)
        return state.startswith("08") or state in _POSTGRES_TRANSIENT
    return isinstance(wrapper, OperationalError)  # a driver adamtune does not know: as SQLAlchemy classes it


def describe_error(exc: BaseException) -> str:
    """One line naming the driver's exception and its message, e.g. "OperationalError: database or disk is full"."""
    orig = driver_error(exc)
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0] if text else ''}".rstrip(": ")
