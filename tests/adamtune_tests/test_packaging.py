"""One import name: a regular install holds only `adamtune` (with its study files and fragments), and
neither kind of install lets a user's `import training` or `import storage` pick up adamtune's code."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow  # builds a wheel and starts processes

ROOMS = ("studies", "search_spaces", "data", "training", "storage", "results")
PROBE = f"""
import importlib, importlib.util
for room in {ROOMS}:
    importlib.import_module("adamtune." + room)
    assert importlib.util.find_spec(room) is None, room + " is importable as a top-level name"
import adamtune.studies, adamtune.search_spaces
from pathlib import Path

assert (Path(adamtune.studies.__file__).parent / "digits_mlp.yaml").exists()
assert "adam" in adamtune.search_spaces.builtin_fragments()
print(adamtune.studies.__file__)
"""


def run_python(code: str, cwd, extra_path: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if extra_path:
        env["PYTHONPATH"] = extra_path
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True)


def test_a_regular_install_adds_only_the_adamtune_package(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(REPO)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("adamtune-*.whl"))
    top_level = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert top_level == {"adamtune", wheel.name.split("-py3")[0] + ".dist-info"}, top_level

    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                                str(wheel)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    probe = run_python(PROBE, cwd=tmp_path, extra_path=str(target))
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.startswith(str(target)), "imported from the regular install, not the checkout"


def test_the_installed_environment_has_no_generic_top_level_names(tmp_path):
    probe = run_python(PROBE, cwd=tmp_path)  # whatever install the test environment has (CI: editable)
    assert probe.returncode == 0, probe.stderr
