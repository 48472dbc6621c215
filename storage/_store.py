"""The study store of one command as one value: resolved once where the command starts and passed down, so
no caller works the URL out again, prints it unmasked, or carries URL and reconnect timeout as a loose pair."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar

from ._errors import storage_errors
from ._open import Heartbeat, open_storage
from ._reconnect import with_reconnect
from ._transient import describe_error
from ._url import mask_url, redact, resolve_url

if TYPE_CHECKING:
    import optuna

T = TypeVar("T")


@dataclass(repr=False)
class Store:
    """Where the study store is (`url`), how to show it (`masked`), the Optuna storage on it (`opened`, on
    first use and then kept) and how long a lost connection is waited out (`reconnect_timeout`, by `call`).
    A worker's store (`for_worker`) beats its trials' heartbeats and caches the trials it runs."""

    url: str
    reconnect_timeout: float = 0.0
    heartbeat: Heartbeat | None = None  # set for a worker: its trials beat, and the store caches them
    _opened: optuna.storages.BaseStorage | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def resolve(cls, flag: str | None = None) -> Store:
        """`--storage`, else the environment, else SQLite here (see `resolve_url`); nothing is opened yet."""
        return cls(resolve_url(flag))

    @classmethod
    def of(cls, where: Store | str | None) -> Store:
        """`where` as a Store: one given is kept (resolved already), a URL or None is resolved."""
        return where if isinstance(where, Store) else cls.resolve(where)

    def for_worker(self, heartbeat: Heartbeat, reconnect_timeout: float) -> Store:
        """This store as a worker opens it: heartbeats on, lost connections waited out for `reconnect_timeout`."""
        return replace(self, heartbeat=heartbeat, reconnect_timeout=reconnect_timeout)

    def __repr__(self) -> str:  # a Store in a traceback or a log line shows no password
        return f"Store({self.masked!r}, reconnect_timeout={self.reconnect_timeout})"

    @property
    def masked(self) -> str:
        """The URL with its passwords as ***: the only form of it that is printed or logged."""
        return mask_url(self.url)

    @property
    def opened(self) -> optuna.storages.BaseStorage:
        """The Optuna storage, opened on first use (tables created) and kept; failures are StorageError."""
        return self.open()

    def open(self) -> optuna.storages.BaseStorage:
        """`opened`, as a call: where opening is the point (create a new store's tables, fail early)."""
        if self._opened is None:
            opened = open_storage(self.url, self.heartbeat)
            if self.heartbeat is not None:
                from ._own_trials import for_packed_worker

                # K running trials are not re-read from the store on every ask; solo or packed, a trial's
                # sampled values are stored in one transaction: all or none, whenever the server goes down.
                opened = for_packed_worker(opened)
            self._opened = opened
        return self._opened

    def call(self, fn: Callable[[], T]) -> T:
        """`fn()`, retried with backoff while the store is unreachable, for up to `reconnect_timeout` s."""
        return with_reconnect(fn, self.url, self.reconnect_timeout)

    def errors(self, opening: bool = False) -> AbstractContextManager[None]:
        """Store errors raised inside become one StorageError naming the masked URL (see `storage_errors`)."""
        return storage_errors(self.url, opening=opening)

    def describe(self, exc: BaseException) -> str:
        """The driver's reason for `exc`, with this store's passwords removed."""
        return redact(describe_error(exc), self.url)
