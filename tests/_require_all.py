"""Skips that CI must not hide: with ADAMTUNE_TEST_REQUIRE_ALL=1 (.ci/run sets it) a test whose real part
(PostgreSQL, chromium, playwright) is missing fails, and any other skip fails the session.

Without the flag a developer's machine may lack those parts; the skips then say what to install.
The hooks are re-exported by tests/conftest.py; `pytest -p _require_all` loads them alone.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_ALL_ENV = "ADAMTUNE_TEST_REQUIRE_ALL"
_skipped: list[str] = []


def require_all() -> bool:
    return os.environ.get(REQUIRE_ALL_ENV) == "1"


def missing(reason: str) -> NoReturn:
    """A real part this test needs is absent: skip it, or fail it where every test must run."""
    __tracebackhide__ = True  # pytest reports the caller's line, not this one
    if require_all():
        pytest.fail(f"{reason} [{REQUIRE_ALL_ENV}=1: every test must run]", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:  # a module-level skip or importorskip
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if require_all() and _skipped and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if require_all() and _skipped:
        terminalreporter.write_line(f"{REQUIRE_ALL_ENV}=1: {len(_skipped)} skipped, and CI runs every test: "
                                    f"{', '.join(_skipped[:5])}{' ...' if len(_skipped) > 5 else ''}", red=True)
