"""The fixtures of the worker and store scenarios, defined once: the real PostgreSQL with the study names a test
made there, and a Python with an older Optuna."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from _require_all import missing
from conftest import postgres_url
from reliability_tests.workers import OLD_OPTUNA


@pytest.fixture
def pg():
    """The real PostgreSQL's URL and a list of the study names a test made there, deleted afterwards."""
    url = postgres_url()
    names: list[str] = []
    yield url, names
    for name in names:
        if name in optuna.study.get_all_study_names(url):
            optuna.delete_study(study_name=name, storage=url)


@pytest.fixture(scope="session")
def old_optuna(request) -> Path:
    """A Python with Optuna OLD_OPTUNA (and an SQLAlchemy 1.4 it supports), made once and kept in pytest's cache."""
    venv = request.config.cache.mkdir(f"optuna-{OLD_OPTUNA}")
    python = venv / "bin" / "python"
    if not (venv / "ready").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True)
        install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"optuna=={OLD_OPTUNA}",
                                  "sqlalchemy<2"], capture_output=True, text=True, timeout=600)
        if install.returncode != 0:
            missing(f"cannot install optuna=={OLD_OPTUNA} into a side environment: {install.stderr[-500:]}")
        (venv / "ready").write_text(OLD_OPTUNA)
    return python
