"""Wait out a lost database: retry a store call with backoff while the store is unreachable."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from adamtune.errors import StorageError

from ._errors import is_store_error
from ._transient import describe_error
from ._url import mask_url, redact

T = TypeVar("T")


def with_reconnect(call: Callable[[], T], url: str, timeout: float) -> T:
    """Run `call`, retrying with backoff (0.5 s doubling to 10 s) while the store is unreachable, for up
    to `timeout` seconds; then one StorageError. Any other error propagates at once."""
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        try:
            return call()
        except Exception as exc:
            if not is_store_error(exc):
                raise
            if time.monotonic() + delay > deadline:
                raise StorageError(f"study store {mask_url(url)} unreachable for {timeout:.0f} s "
                                   f"(reconnect_timeout): {redact(describe_error(exc), url)}") from None
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
