"""The study store: URL resolution, engine options, heartbeats and password masking."""

from ._open import (APPLICATION_NAME, Heartbeat, StorageError, engine_options, is_store_error, open_storage,
                    storage_errors)
from ._transient import describe_error
from ._url import DEFAULT_URL, mask_url, normalize_url, redact, resolve_url

__all__ = ["APPLICATION_NAME", "DEFAULT_URL", "Heartbeat", "StorageError", "describe_error", "engine_options",
           "is_store_error", "mask_url", "normalize_url", "open_storage", "redact", "resolve_url", "storage_errors"]
