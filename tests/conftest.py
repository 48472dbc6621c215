"""Shared fixtures: real stores (an SQLite file, the real PostgreSQL), small digits studies, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import optuna
import pytest
import yaml

import _reliability_table
from _require_all import (  # noqa: F401 - pytest finds hooks by name in conftest
    missing,
    pytest_collectreport,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
)

REPO = Path(__file__).resolve().parents[1]
# Before any test imports torch, and for the CLI processes tests start: the models here are tiny, and on a
# shared machine OpenMP threads spin-wait on each other (a 0.2 s test took 20 s beside two busy processes).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The pack's exactness tests compare one trial's numbers in packs of different widths, i.e. kernels run at
# different channel counts. AVX-512 kernels (PyTorch's own and oneDNN's convolutions) block channels by 16
# and round a padded CNN differently from an unpadded one: measured 4.5e-5 relative after 2 epochs, which
# training amplifies to 4% by the 4th (README "Packed trials"). Pinned to AVX2, the rounding the bounds
# were set on holds on every CI machine, whichever CPU it draws.
os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
POSTGRES_ENV = "ADAMTUNE_TEST_POSTGRES_URL"


def postgres_url() -> str:
    """The real PostgreSQL's URL; only for tests marked `postgres`, so that `-m postgres` selects them all."""
    if _running is not None and _running.get_closest_marker("postgres") is None:
        pytest.fail(f"{_running.nodeid} uses PostgreSQL: mark it @pytest.mark.postgres", pytrace=False)
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        missing(f"{POSTGRES_ENV} is not set (.ci/run sets it; the PostgreSQL tests must run there)")
    return url


_running: pytest.Item | None = None  # the test being set up or run, for postgres_url()'s check


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_reliability_table, "reliability_table")  # its terminal-summary hook


def pytest_runtest_setup(item: pytest.Item) -> None:
    global _running
    _running = item


def pytest_collection_modifyitems(items) -> None:
    """`-m postgres` selects every test on the real PostgreSQL: the storage_url fixture's postgres
    half and the tests using the `pg` fixture are marked here, direct callers of postgres_url() by hand."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if (callspec is not None and callspec.params.get("storage_url") == "postgres") or "pg" in item.fixturenames:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request, tmp_path) -> str:
    """Every store-facing test runs on an SQLite file and on the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'studies.db'}"
    return postgres_url()


@pytest.fixture
def own_store_url(storage_url) -> str:
    """`storage_url`, but on PostgreSQL a new database of this test's own on the real server (dropped
    afterwards): what a test counts there is what its own commands wrote, whoever else uses the server."""
    if not storage_url.startswith("postgresql"):
        yield storage_url
        return
    import sqlalchemy

    name = f"adamtune_t_{uuid.uuid4().hex[:12]}"
    server = sqlalchemy.create_engine(storage_url, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        yield sqlalchemy.make_url(storage_url).set(database=name).render_as_string(hide_password=False)
        with server.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        server.dispose()


@pytest.fixture
def study_name(storage_url) -> str:
    """A unique study name, deleted from the store afterwards (PostgreSQL is shared between runs)."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    storage = optuna.storages.RDBStorage(storage_url)
    if name in optuna.study.get_all_study_names(storage):
        optuna.delete_study(study_name=name, storage=storage)
    storage.engine.dispose()


def write_study(directory: Path, name: str, **changes) -> Path:
    """A small digits study (few epochs, few trials) written as YAML; `changes` override its keys."""
    spec = {
        "name": name,
        "dataset": "digits",
        "model": "mlp",
        "epochs": 4,
        "seed": 0,
        "search_space": ["adam", "schedule", "regularization", "augmentation", "batch", "mlp"],
        "params": {"batch_size": {"choices": [32, 64]}, "width": {"choices": [32, 64], "default": 64}},
        "exclude": ["hflip"],
        "sampler": {"type": "tpe", "n_startup_trials": 3},
        "pruner": {"type": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
        "n_trials": 4,
        "artifacts": {"path": str(directory / "artifacts")},
    }
    spec.update(changes)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def adamtune(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300):
    """Run the real `adamtune` command line in a subprocess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ADAMTUNE_STORAGE")}
    full_env.update(env or {})
    return subprocess.run([ADAMTUNE, *args], check=False, cwd=cwd or REPO, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


ADAMTUNE = str(Path(sys.executable).parent / "adamtune")  # the installed console script


def study_view(storage, name: str):
    """The study as adamtune's readers see it: every trial as a TrialRecord (config, params, metrics)."""
    from adamtune.results import StudyView

    return StudyView.of(optuna.load_study(study_name=name, storage=storage))
