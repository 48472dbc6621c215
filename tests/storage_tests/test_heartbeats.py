"""Reading workers' heartbeats straight from the store."""

from __future__ import annotations

from datetime import timedelta

import optuna
import pytest
import sqlalchemy

from adamtune.storage import StorageError, heartbeat_ages


def test_heartbeat_ages_are_read_on_every_store(storage_url, study_name):
    storage = optuna.storages.RDBStorage(storage_url)
    study = optuna.create_study(study_name=study_name, storage=storage)
    beating, silent = study.ask(), study.ask()
    storage.record_heartbeat(beating._trial_id)
    storage.record_heartbeat(beating._trial_id)  # the second beat updates the row (Optuna's other code path)
    ages = heartbeat_ages(storage, study_name)
    storage.engine.dispose()
    assert set(ages) == {beating.number} and silent.number not in ages
    assert timedelta(0) <= ages[beating.number] < timedelta(minutes=10)


def test_a_database_error_reading_heartbeats_is_one_storage_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'broken.db'}"
    storage = optuna.storages.RDBStorage(url)
    with storage.engine.begin() as conn:
        conn.execute(sqlalchemy.text("DROP TABLE trial_heartbeats"))
    with pytest.raises(StorageError) as info:
        heartbeat_ages(storage, "any")
    assert str(info.value).startswith(f"study store {url}: OperationalError: ")
    assert "trial_heartbeats" in str(info.value) and "\n" not in str(info.value)
