"""docker-compose.yml and docker-compose.gpu.yml as Docker Compose itself merges and interpolates them
(`docker compose config` needs no engine, and there is none here), README's compose lines as written, and the
worker's actual command line run against the local PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess

import optuna
import pytest
from optuna.trial import TrialState

from conftest import REPO, postgres_url, write_study
from reliability_tests.deployments import (
    COMPOSE_FILES,
    compose_config,
    compose_project,
    readme_block,
    rendered,
    without_comment,
)
from reliability_tests.workers import finish, spawn

PASSWORD = {"ADAMTUNE_DB_PASSWORD": "0123456789abcdef"}
GPU = COMPOSE_FILES  # the GPU override on top of the base file: `-f docker-compose.yml -f docker-compose.gpu.yml`


@pytest.fixture
def project(tmp_path):
    return compose_project(tmp_path)


def test_services_are_wired_for_a_safe_scalable_deployment(project):
    config = rendered(compose_config(project, env=PASSWORD))
    services = config["services"]
    assert set(services) == {"postgres", "worker", "dashboard"}
    pg = services["postgres"]
    assert re.fullmatch(r"postgres:\d+", pg["image"]), "pinned major version"
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert "ports" not in pg, "the database is not published to other hosts"
    assert {(v["type"], v["source"]) for v in pg["volumes"]} == {("volume", "pgdata")} and "pgdata" in config["volumes"]
    for name in ("worker", "dashboard"):
        service = services[name]
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["environment"]["ADAMTUNE_STORAGE"] == "postgresql+psycopg://adamtune:0123456789abcdef@postgres:5432/adamtune"
    worker = services["worker"]
    assert worker["restart"] == "on-failure" and "container_name" not in worker, "scalable with --scale"
    assert "ports" not in worker
    studies, = (v for v in worker["volumes"] if v["target"] == "/app/studies")
    assert studies["type"] == "bind" and studies["source"] == str(project / "studies") and studies["read_only"]
    assert worker["environment"]["ADAMTUNE_ARTIFACTS"] == "/artifacts"
    dashboard = services["dashboard"]
    assert all(p["host_ip"] == "127.0.0.1" for p in dashboard["ports"]), "dashboard on loopback only"
    shared = {(v["source"], v["target"], v.get("read_only", False)) for v in dashboard["volumes"]}
    # the dashboard draws a learning curve when first opened and keeps it there (500 on a read-only mount)
    assert shared == {("artifacts", "/artifacts", False)}


def test_both_services_run_the_image_built_here_never_a_pulled_one(project):
    for files in ((), GPU):
        services = rendered(compose_config(project, *files, env=PASSWORD))["services"]
        worker, dashboard = services["worker"], services["dashboard"]
        assert worker["build"]["context"] == str(project) and worker["build"]["dockerfile"] == "Dockerfile"
        assert worker["pull_policy"] == "build", "built by `up`, not looked up in a registry first"
        assert dashboard["image"] == worker["image"]
        assert dashboard["pull_policy"] == "never" or dashboard.get("build") == worker["build"]


def test_without_a_password_every_compose_command_stops_and_says_how_to_set_it(project):
    for files in ((), GPU):
        result = compose_config(project, *files)
        assert result.returncode != 0 and result.stdout == ""
        assert "required variable ADAMTUNE_DB_PASSWORD is missing a value" in result.stderr
        assert "openssl rand -hex 24` > .env" in result.stderr, "the message says how"
    for name in COMPOSE_FILES:
        assert "change-me" not in (REPO / name).read_text()


def test_readme_compose_lines_set_one_password_once(project):
    password_line, up_line = (without_comment(line) for line in readme_block("**docker-compose.**"))
    assert up_line == "docker compose up --scale worker=4"  # needs an engine: its `config` runs instead
    passwords = []
    for _ in range(2):  # again: the database keeps its first password, so .env is kept
        subprocess.run(["bash", "-c", password_line], cwd=project, check=True, env={"PATH": "/usr/bin:/bin"})
        services = rendered(compose_config(project))["services"]
        passwords.append(services["postgres"]["environment"]["POSTGRES_PASSWORD"])
        for name in ("worker", "dashboard"):
            assert f"adamtune:{passwords[-1]}@postgres" in services[name]["environment"]["ADAMTUNE_STORAGE"]
    assert re.fullmatch(r"[0-9a-f]{48}", passwords[0]) and passwords[1] == passwords[0]


def test_the_gpu_override_reserves_the_gpus_and_builds_cuda_wheels(project):
    base = rendered(compose_config(project, env=PASSWORD))["services"]
    gpu = rendered(compose_config(project, *GPU, env=PASSWORD))["services"]
    cpu_index = re.search(r"ARG TORCH_INDEX=(\S+)", (REPO / "Dockerfile").read_text()).group(1)
    assert cpu_index.endswith("/whl/cpu") and "args" not in base["worker"]["build"], "CPU wheels by default"
    cuda_index = gpu["worker"]["build"]["args"]["TORCH_INDEX"]
    assert re.fullmatch(r"https://download\.pytorch\.org/whl/cu\d+", cuda_index)
    where = ("Dockerfile", "README.md", "docker-compose.gpu.yml", "deploy/kubernetes/gpu/kustomization.yaml")
    named = {m for path in where
             for m in re.findall(r"https://download\.pytorch\.org/whl/cu\d+", (REPO / path).read_text())}
    assert named == {cuda_index}, "one CUDA wheel index everywhere it is named"
    device, = gpu["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert device == {"driver": "nvidia", "count": -1, "capabilities": ["gpu"]}, "every GPU (count: all)"
    assert gpu["worker"]["command"][-2:] == ["--workers", "1"], "one worker process per GPU, in turn"
    assert "deploy" not in gpu["dashboard"] and gpu["postgres"] == base["postgres"]
    assert {k: v for k, v in gpu["worker"].items() if k not in ("build", "deploy", "command")} == \
        {k: v for k, v in base["worker"].items() if k not in ("build", "deploy", "command")}


@pytest.mark.postgres
@pytest.mark.slow  # worker processes training a study
@pytest.mark.parametrize("files", [(), GPU], ids=["cpu", "gpu-override"])
def test_worker_command_line_runs_a_digits_study_against_postgres(project, tmp_path, files):
    url = postgres_url()
    name = f"compose_{os.getpid()}_{len(files)}"
    study = write_study(tmp_path, name, n_trials=3, epochs=2)
    env = {**PASSWORD, "ADAMTUNE_STUDY": str(study), "ADAMTUNE_GPU_WORKERS": "2"}
    worker = rendered(compose_config(project, *files, env=env))["services"]["worker"]
    argv = worker["command"]
    assert argv[:3] == ["adamtune", "run", str(study)]
    service_env = {k: str(v) for k, v in worker["environment"].items()}
    service_env["ADAMTUNE_STORAGE"] = url  # the compose host `postgres` is the local server here
    service_env["ADAMTUNE_ARTIFACTS"] = str(tmp_path / "artifacts")
    service_env["ADAMTUNE_DATA"] = str(tmp_path / "data")
    try:
        (code, output), = finish([spawn(*argv[1:], env=service_env, cwd=tmp_path)])
        assert code == 0, output
        if files:
            assert "starting 2 workers" in output and "2 workers finished; exit codes [0, 0]" in output
        trials = optuna.load_study(study_name=name, storage=url).get_trials()
        finished = len([t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)])
        assert 3 <= finished < 3 + (2 if files else 1), "the budget, and at most one more trial per extra worker"
        assert list((tmp_path / "artifacts" / name / "best").glob("*/model.pt")), "under the study's uid"
    finally:
        if name in optuna.study.get_all_study_names(url):
            optuna.delete_study(study_name=name, storage=url)
