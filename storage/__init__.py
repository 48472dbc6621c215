"""The SQL study store: URL resolution, engine options and password masking."""

from ._open import StorageError, engine_options, open_storage, storage_errors
from ._url import DEFAULT_URL, mask_url, normalize_url, redact, resolve_url

__all__ = ["DEFAULT_URL", "StorageError", "engine_options", "mask_url", "normalize_url", "open_storage",
           "redact", "resolve_url", "storage_errors"]
