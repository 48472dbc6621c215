"""Find a study by name in a store, failing its dead workers' trials on the way."""

from __future__ import annotations

import optuna

from adamtune.errors import StudyNotFound

from ._heartbeats import fail_stale
from ._store import Store


def open_study(name: str, store: Store) -> optuna.Study:
    """The study `name` in `store`. Raises StudyNotFound (naming the masked URL) or StorageError."""
    opened = store.opened
    with store.errors():
        if name not in optuna.study.get_all_study_names(opened):
            raise StudyNotFound(name, store.masked)
        study = optuna.load_study(study_name=name, storage=opened)
    return fail_stale(study, store.url)


def open_studies(store: Store) -> list[optuna.Study]:
    """Every study in `store`, each with its dead workers' trials failed."""
    opened = store.opened
    with store.errors():
        names = optuna.study.get_all_study_names(opened)
        return [fail_stale(optuna.load_study(study_name=n, storage=opened), store.url) for n in names]
