"""Where the study store is, and how to show its address without the password."""

from __future__ import annotations

import contextlib
import os
import re
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from adamtune.errors import InputError

DEFAULT_URL = "sqlite:///adamtune.db"
ENV_URL = "ADAMTUNE_STORAGE"
ENV_URL_FILE = "ADAMTUNE_STORAGE_FILE"


def resolve_url(flag: str | None = None) -> str:
    """`--storage`, else $ADAMTUNE_STORAGE, else the file named by $ADAMTUNE_STORAGE_FILE, else SQLite here.
    A source that is named but empty or unreadable (a broken container secret) is an InputError: falling
    back to a local file would have every container train into its own throwaway store."""
    if flag is not None:
        return normalize_url(_named("--storage", "URL", flag))
    if ENV_URL in os.environ:
        return normalize_url(_named("environment", ENV_URL, os.environ[ENV_URL]))
    if ENV_URL_FILE in os.environ:
        path = _named("environment", ENV_URL_FILE, os.environ[ENV_URL_FILE])
        try:
            with open(path, encoding="utf-8") as fh:  # docker secrets
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(path, ENV_URL_FILE, f"cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
        return normalize_url(_named(path, ENV_URL_FILE, text))
    return DEFAULT_URL


def _named(source: str, key: str, value: str) -> str:
    if not value.strip():
        raise InputError(source, key, f"is empty; give the study store's URL (or leave {key} unset for the "
                                      f"default {DEFAULT_URL})")
    return value.strip()


def normalize_url(url: str) -> str:
    """Plain `postgresql://` means psycopg 3, the driver adamtune installs (SQLAlchemy would pick psycopg2)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


# Every way a password rides in a URL SQLAlchemy accepts, besides user:password@: a query parameter
# (`?password=`, `passwd`, `sslpassword`), a libpq conninfo string (`host=h password=p`, quoted or not)
# passed in the query, each possibly URL-encoded (`password%3Dp`).
_SECRET = re.compile(
    r"(?i)(\b(?:ssl)?pass(?:word|wd)|\bpwd)(\s*=\s*|%3D)"  # the key, then = (or its URL encoding)
    r"('(?:[^'\\]|\\.)*'|%27.*?%27|[^&\s;'%]*(?:%(?!20|26|27)[0-9A-F]{2}[^&\s;'%]*)*)")  # quoted, or up to & ; space


def mask_url(url: str) -> str:
    """The URL with every password in it replaced by ***; safe to print and log."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        shown = re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)
    return _SECRET.sub(r"\1\2***", shown)


def redact(text: str, url: str) -> str:
    """`text` with the URL's passwords removed wherever they appear, as given or URL-encoded (driver errors
    can echo them)."""
    text = text.replace(url, mask_url(url))
    for secret in sorted(_secrets(url), key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            text = text.replace(form, "***")
    return _SECRET.sub(r"\1\2***", text)


def _secrets(url: str) -> set[str]:
    found: set[str] = set()
    with contextlib.suppress(ArgumentError):
        password = make_url(url).password
        if password:
            found.add(str(password))
    for candidate in (url, unquote(url), unquote_plus(url)):
        for match in _SECRET.finditer(candidate):
            value = match.group(3).strip("'")
            found |= {value, unquote(value)} - {""}
    return {secret for secret in found if len(secret) >= 2}


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_file(url: str) -> str | None:
    """The database file of an SQLite URL (None for another store, or SQLite in memory): a reader can see
    that it is missing before opening it, which would create it."""
    if not is_sqlite(url):
        return None
    try:
        database = make_url(url).database
    except ArgumentError:
        return None
    return database if database and database != ":memory:" else None


def has_heartbeats(url: str) -> bool:
    """Optuna keeps heartbeats in RDB stores only, not in journal files or behind the gRPC proxy."""
    return not url.startswith(("journal:", "grpc:"))
