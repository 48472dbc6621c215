"""`adamtune status` while a trial runs, on an SQLite file and on the real PostgreSQL."""

from __future__ import annotations

import re

import optuna
import pytest

from adamtune.studies import create_or_join, load_study_file
from conftest import adamtune, write_study

pytestmark = pytest.mark.slow  # starts processes or trains a study


def running_trial_with_heartbeat(url: str, name: str, tmp_path) -> int:
    """What a live worker leaves in the store: the baseline trial RUNNING, its worker, one epoch, a heartbeat."""
    storage = optuna.storages.RDBStorage(url)
    spec = load_study_file(write_study(tmp_path, name))
    study, _ = create_or_join(spec, storage)
    trial = study.ask()
    spec.space.sample(trial)
    trial.set_user_attr("worker", "node7:4242")
    trial.set_user_attr("device", "cuda:0")
    trial.report(0.5, 0)
    storage.record_heartbeat(trial._trial_id)
    storage.engine.dispose()
    return trial.number


def test_status_shows_each_running_trial_with_its_worker_device_and_last_heartbeat(storage_url, study_name,
                                                                                  tmp_path):
    number = running_trial_with_heartbeat(storage_url, study_name, tmp_path)
    result = adamtune("status", study_name, "--storage", storage_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"study {study_name}: 1 running"), result.stdout
    row = next((line for line in result.stdout.splitlines() if line.startswith(f"{number} ")), "")
    assert "node7:4242" in row and "cuda:0" in row and "Adam lr=0.001" in row, result.stdout
    ago = re.search(r"\b(\d+) s ago\b", row)
    assert ago and int(ago[1]) < 600, f"the heartbeat is seconds old, not hours (time zone): {row}"


def test_studies_counts_waiting_trials_apart_from_running_ones(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert adamtune("run", str(write_study(tmp_path, "q", n_trials=1, epochs=1)), "--storage", url).returncode == 0
    study = optuna.load_study(study_name="q", storage=url)
    study.enqueue_trial(study.trials[0].params)  # a queued retry is not running
    header, _, row = adamtune("studies", "--storage", url).stdout.splitlines()[1:4]
    cells = dict(zip(header.split(), row.split(), strict=True))
    assert (cells["running"], cells["waiting"]) == ("0", "1")
