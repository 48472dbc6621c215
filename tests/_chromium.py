"""Debian's chromium driven by Playwright, for the tests that look at pages in a real browser.

`playwright install` downloads its own browser and cannot run offline, so the tests use the system
chromium (`apt-get install chromium`; .ci/run does it) through Playwright's Python package.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from _require_all import missing

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
        "--disable-component-update", "--disable-sync", "--disable-quic"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # screenshots to look at; gitignored


@contextlib.contextmanager
def chromium(profile: Path, width: int = 1600, height: int = 1000):
    """A browser context with a fresh user data directory `profile`; skips when chromium or playwright is
    missing (fails under ADAMTUNE_TEST_REQUIRE_ALL=1)."""
    if not os.access(CHROMIUM, os.X_OK):
        missing(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)")
    try:
        from playwright import sync_api
    except ImportError:
        missing("playwright is missing: pip install -e '.[test]' installs it")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                       args=ARGS, viewport={"width": width, "height": height})
        try:
            yield context
        finally:
            context.close()


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
