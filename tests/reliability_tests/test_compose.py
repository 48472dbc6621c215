"""docker-compose.yml: its wiring, and its worker's actual command line run against the local PostgreSQL
(there is no Docker engine here)."""

from __future__ import annotations

import os
import re

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from conftest import REPO, postgres_url, write_study
from reliability_tests.workers import finish, spawn

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())


def interpolate(value: str, env: dict) -> str:
    """Compose's ${VAR:-default} substitution."""
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)


def test_services_are_wired_for_a_safe_scalable_deployment():
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "worker", "dashboard"}
    pg = services["postgres"]
    assert re.fullmatch(r"postgres:\d+", pg["image"]), "pinned major version"
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert "ports" not in pg, "the database is not published to other hosts"
    assert any(v.startswith("pgdata:") for v in pg["volumes"]) and "pgdata" in COMPOSE["volumes"]
    for name in ("worker", "dashboard"):
        service = services[name]
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["environment"]["ADAMTUNE_STORAGE"].startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in service["environment"]["ADAMTUNE_STORAGE"]
    worker = services["worker"]
    assert worker["restart"] == "on-failure" and "container_name" not in worker, "scalable with --scale"
    assert "ports" not in worker
    assert "./studies:/app/studies:ro" in worker["volumes"]
    assert any(v.startswith("artifacts:") for v in worker["volumes"])
    assert worker["environment"]["ADAMTUNE_ARTIFACTS"] == "/artifacts"
    assert all(p.startswith("127.0.0.1:") for p in services["dashboard"]["ports"]), "dashboard on loopback only"
    assert (REPO / "Dockerfile").exists() and services["worker"]["build"] == "."


@pytest.mark.postgres
@pytest.mark.slow  # a worker process training a study
def test_worker_command_line_runs_a_digits_study_against_postgres(tmp_path):
    url = postgres_url()
    name = f"compose_{os.getpid()}"
    study = write_study(tmp_path, name, n_trials=3, epochs=2)
    worker = COMPOSE["services"]["worker"]
    env = {"ADAMTUNE_STUDY": str(study)}
    argv = [interpolate(a, env) for a in worker["command"]]
    assert argv[:2] == ["adamtune", "run"] and argv[2] == str(study)
    service_env = {k: str(v) for k, v in worker["environment"].items()}
    service_env["ADAMTUNE_STORAGE"] = url  # the compose host `postgres` is the local server here
    service_env["ADAMTUNE_ARTIFACTS"] = str(tmp_path / "artifacts")
    service_env["ADAMTUNE_DATA"] = str(tmp_path / "data")
    try:
        (code, output), = finish([spawn(*argv[1:], env=service_env, cwd=tmp_path)])
        assert code == 0, output
        trials = optuna.load_study(study_name=name, storage=url).get_trials()
        assert len([t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]) == 3
        assert list((tmp_path / "artifacts" / name / "best").glob("*/model.pt")), "under the study's uid"
    finally:
        if name in optuna.study.get_all_study_names(url):
            optuna.delete_study(study_name=name, storage=url)
