"""Optuna's gRPC storage proxy in front of PostgreSQL, and a store with an old schema."""

from __future__ import annotations

import os
import socket
import time

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from conftest import adamtune, postgres_url, write_study
from reliability_tests.workers import finish, free_port, spawn, tally

pytestmark = pytest.mark.slow  # a gRPC proxy and worker processes, the CLI


@pytest.mark.postgres
def test_two_workers_through_the_grpc_proxy(tmp_path, record_property):
    started = time.monotonic()
    url = postgres_url()
    name = f"proxy_{os.getpid()}"
    port = free_port()
    proxy = spawn("storage-proxy", "--storage", url, "--port", str(port))
    try:
        deadline = time.monotonic() + 60
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert proxy.poll() is None and time.monotonic() < deadline, proxy.communicate()
            time.sleep(0.2)
        study = write_study(tmp_path, name, n_trials=4, epochs=2)
        grpc_url = f"grpc://127.0.0.1:{port}"
        results = finish([spawn("run", str(study), "--storage", grpc_url) for _ in range(2)])
        assert [code for code, _ in results] == [0, 0], results
        trials = optuna.load_study(study_name=name, storage=url).get_trials()  # straight from PostgreSQL
        assert 4 <= len([t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]) <= 5
        assert len({t.user_attrs["worker"] for t in trials}) == 2
        tally(record_property, "2 workers through the gRPC storage proxy", 2, trials, started)
    finally:
        proxy.terminate()
        proxy.communicate(timeout=10)
        if name in optuna.study.get_all_study_names(url):
            optuna.delete_study(study_name=name, storage=url)


def test_old_schema_says_to_run_optuna_storage_upgrade(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    optuna.create_study(storage=url, study_name="old")
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE alembic_version SET version_num = 'v2.6.0.a'"))
    engine.dispose()
    result = adamtune("studies", "--storage", url)
    assert result.returncode == 1
    assert f"run `optuna storage upgrade --storage {url}`" in result.stderr
    assert "Traceback" not in result.stderr
