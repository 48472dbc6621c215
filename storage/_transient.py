"""Which store errors are worth waiting out: only a database that cannot be reached or a connection
that broke. A full disk, a read-only database, a constraint violation or a bad value fails the same
way however long a worker waits, so it must fail at once with its real reason.

The real reason is the driver's exception: Optuna wraps SQLAlchemy's error in StorageInternalError
(`raise ... from e`, so it is the `__cause__`), and SQLAlchemy keeps the driver's in `.orig`.
"""

from __future__ import annotations

import sqlite3
import sys

# SQLite result codes (the primary code is the low byte of the extended one): another connection holds the lock.
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
# PostgreSQL SQLSTATEs besides class 08 (connection exception): the server is shutting down, crashed or still
# starting, has no free connection slot, or rolled the transaction back because of a concurrent one.
_POSTGRES_TRANSIENT = {"57P01", "57P02", "57P03", "53300", "40001", "40P01"}


def driver_error(exc: BaseException) -> BaseException:
    """The innermost exception behind `exc` along explicit `raise ... from` links and SQLAlchemy's `.orig`."""
    from sqlalchemy.exc import DBAPIError

    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DBAPIError) and exc.orig is not None:
            return exc.orig
        if exc.__cause__ is None:
            break
        exc = exc.__cause__
    return exc


def is_connection_lost(exc: BaseException) -> bool:
    """True when the database is unreachable or the connection broke: waiting may help."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    wrapper: BaseException | None = exc
    while wrapper is not None and not isinstance(wrapper, DBAPIError):
        wrapper = wrapper.__cause__
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
