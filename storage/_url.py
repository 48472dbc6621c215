"""Where the study store is, and how to show its address without the password."""

from __future__ import annotations

import os
import re

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_URL = "sqlite:///adamtune.db"
ENV_URL = "ADAMTUNE_STORAGE"
ENV_URL_FILE = "ADAMTUNE_STORAGE_FILE"


def resolve_url(flag: str | None = None) -> str:
    """`--storage`, else $ADAMTUNE_STORAGE, else the file named by $ADAMTUNE_STORAGE_FILE, else SQLite here."""
    url = flag or os.environ.get(ENV_URL)
    if not url and os.environ.get(ENV_URL_FILE):
        with open(os.environ[ENV_URL_FILE], encoding="utf-8") as fh:  # docker secrets
            url = fh.read().strip()
    return normalize_url(url or DEFAULT_URL)


def normalize_url(url: str) -> str:
    """Plain `postgresql://` means psycopg 3, the driver adamtune installs (SQLAlchemy would pick psycopg2)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***; safe to print and log."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def redact(text: str, url: str) -> str:
    """`text` with the URL's password removed wherever it appears (driver errors can echo it)."""
    try:
        password = make_url(url).password
    except ArgumentError:
        password = None
    text = text.replace(url, mask_url(url))
    return text.replace(str(password), "***") if password else text


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def has_heartbeats(url: str) -> bool:
    """Optuna keeps heartbeats in RDB stores only, not in journal files or behind the gRPC proxy."""
    return not url.startswith(("journal:", "grpc:"))
