"""Find a study by name in a store, failing its dead workers' trials on the way."""

from __future__ import annotations

import optuna

from adamtune.errors import StudyNotFound

from ._errors import storage_errors
from ._heartbeats import fail_stale
from ._open import open_storage
from ._url import mask_url, resolve_url


def open_study(name: str, storage: str | None = None) -> tuple[optuna.Study, str]:
    """The study `name` in the store `storage` (a URL; default as `resolve_url`), and the URL it came from.
    Raises StudyNotFound (naming the masked URL) or StorageError."""
    url = resolve_url(storage)
    store = open_storage(url)
    with storage_errors(url):
        if name not in optuna.study.get_all_study_names(store):
            raise StudyNotFound(name, mask_url(url))
        study = optuna.load_study(study_name=name, storage=store)
    return fail_stale(study, url), url


def open_studies(storage: str | None = None) -> tuple[list[optuna.Study], str]:
    """Every study in the store, each with its dead workers' trials failed, and the store's URL."""
    url = resolve_url(storage)
    store = open_storage(url)
    with storage_errors(url):
        names = optuna.study.get_all_study_names(store)
        return [fail_stale(optuna.load_study(study_name=n, storage=store), url) for n in names], url
