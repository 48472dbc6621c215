"""With ADAMTUNE_TEST_REQUIRE_ALL=1 (as .ci/run sets it) no skip passes: pytest itself exits non-zero."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from _require_all import REQUIRE_ALL_ENV
from conftest import POSTGRES_ENV, REPO

TESTS = Path(__file__).resolve().parent

FORCED_SKIPS = {
    "pytest.skip": "import pytest\n\ndef test_x():\n    pytest.skip('no reason')\n",
    "skip marker": "import pytest\n\n@pytest.mark.skip(reason='later')\ndef test_x():\n    pass\n",
    "importorskip": "import pytest\n\npytest.importorskip('no_such_module')\n\ndef test_x():\n    pass\n",
    "missing part": "from _require_all import missing\n\ndef test_x():\n    missing('chromium is missing')\n",
}


def pytest_run(*args: str, cwd: Path, require_all: bool, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != REQUIRE_ALL_ENV}
    full["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(REPO), full.get("PYTHONPATH", "")])
    full.update(env)
    if require_all:
        full[REQUIRE_ALL_ENV] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=cwd,
                          env=full, capture_output=True, text=True, check=False, timeout=120)


@pytest.mark.parametrize("kind", FORCED_SKIPS)
def test_a_skip_fails_the_session_only_under_the_flag(tmp_path, kind):
    (tmp_path / "test_forced.py").write_text(FORCED_SKIPS[kind])
    (tmp_path / "test_passing.py").write_text("def test_y():\n    pass\n")
    relaxed = pytest_run("-p", "_require_all", cwd=tmp_path, require_all=False)
    assert relaxed.returncode == pytest.ExitCode.OK and "1 skipped" in relaxed.stdout, relaxed.stdout
    strict = pytest_run("-p", "_require_all", cwd=tmp_path, require_all=True)
    assert strict.returncode == pytest.ExitCode.TESTS_FAILED, strict.stdout
    assert f"{REQUIRE_ALL_ENV}=1" in strict.stdout


def test_postgresql_tests_fail_without_the_server_url_under_the_flag(tmp_path):
    """The real conftest, as .ci/run uses it: a missing ADAMTUNE_TEST_POSTGRES_URL is an error there."""
    test = "tests/storage_tests/test_storage.py::test_open_real_store_round_trip[postgres]"
    strict = pytest_run(str(REPO / test), "--rootdir", str(REPO), cwd=REPO, require_all=True, **{POSTGRES_ENV: ""})
    assert strict.returncode == pytest.ExitCode.TESTS_FAILED, strict.stdout
    assert f"{POSTGRES_ENV} is not set" in strict.stdout and "every test must run" in strict.stdout
