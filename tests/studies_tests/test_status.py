"""`adamtune status` while a trial runs, on an SQLite file and on the real PostgreSQL."""

from __future__ import annotations

import re

import optuna
from conftest import adamtune


def running_trial_with_heartbeat(url: str, name: str) -> int:
    """What a live worker leaves in the store: a RUNNING trial, its worker, one epoch, a heartbeat."""
    storage = optuna.storages.RDBStorage(url)
    trial = optuna.create_study(study_name=name, storage=storage).ask()
    trial.set_user_attr("worker", "node7:4242")
    trial.set_user_attr("summary", "Adam lr=0.001, batch 32, width 64")
    trial.report(0.5, 0)
    storage.record_heartbeat(trial._trial_id)
    storage.engine.dispose()
    return trial.number


def test_status_shows_each_running_trial_with_its_worker_and_last_heartbeat(storage_url, study_name):
    number = running_trial_with_heartbeat(storage_url, study_name)
    result = adamtune("status", study_name, "--storage", storage_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"study {study_name}: 1 running"), result.stdout
    row = next((line for line in result.stdout.splitlines() if line.startswith(f"{number} ")), "")
    assert "node7:4242" in row and "Adam lr=0.001" in row, result.stdout
    ago = re.search(r"\b(\d+) s ago\b", row)
    assert ago and int(ago[1]) < 600, f"the heartbeat is seconds old, not hours (time zone): {row}"
