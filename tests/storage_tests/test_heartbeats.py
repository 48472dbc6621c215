"""Reading workers' heartbeats straight from the store."""

from __future__ import annotations

import time
from datetime import timedelta

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from adamtune.storage import Heartbeat, StorageError, StudyAttr, fail_stale, heartbeat_ages, open_storage


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


def test_a_trial_that_never_beat_is_failed_and_retried_once_its_start_is_a_grace_period_old(storage_url, study_name):
    """A worker killed between the ask and its first heartbeat leaves its trial RUNNING with no heartbeat
    row; once it started a grace period ago, the next worker or `adamtune trials` (both through
    `fail_stale_trials` on the store `open_storage` gives) fails it and queues its retry."""
    beat = Heartbeat(interval=1, grace_period=2, max_retry=3)
    study = optuna.create_study(study_name=study_name, storage=open_storage(storage_url))
    study.set_user_attr(StudyAttr.HEARTBEAT, beat.__dict__)
    killed = study.ask()  # a store without heartbeats: no beat is ever written, as after a SIGKILL
    x = killed.suggest_float("x", 0, 1)
    assert killed.number not in heartbeat_ages(study._storage, study_name)
    assert fail_stale(study, storage_url).trials[0].state == TrialState.RUNNING, "not before its grace period"
    deadline = time.monotonic() + 60
    while (trials := fail_stale(study, storage_url).trials)[0].state == TrialState.RUNNING:
        assert time.monotonic() < deadline, "the trial that never beat is still RUNNING after 60 s"
        time.sleep(0.2)
    assert trials[0].state == TrialState.FAIL
    assert [(t.state, t.params) for t in trials[1:]] == [(TrialState.WAITING, {"x": x})], "its retry is queued"
    worker = optuna.load_study(study_name=study_name, storage=open_storage(storage_url, beat))
    assert worker._storage._get_stale_trial_ids(worker._study_id) == [], "a FAIL trial is not stale again"
