"""The dashboard refuses writes when read-only, over real HTTP, and defaults to read-only off loopback."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request

import optuna
import pytest

from conftest import ADAMTUNE
from reliability_tests.workers import free_port

pytestmark = pytest.mark.slow  # a dashboard server process


def request(method: str, url: str, body: dict | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.fixture
def store(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    study = optuna.create_study(storage=url, study_name="kept")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    return url, study._study_id


def serve(url: str, *extra: str):
    port = free_port()
    proc = subprocess.Popen([ADAMTUNE, "dashboard", "--storage", url, "--port", str(port), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if request("GET", f"{base}/api/studies") == 200:
                return proc, base
        except OSError:
            pass
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.3)
    proc.kill()
    pytest.fail("dashboard did not start")


@pytest.mark.parametrize("extra", [["--read-only"], ["--host", "0.0.0.0"]], ids=["read-only", "non-loopback"])
def test_read_only_refuses_every_write(store, extra):
    url, study_id = store
    proc, base = serve(url, *extra)
    try:
        assert request("GET", f"{base}/api/studies/{study_id}") == 200
        assert request("DELETE", f"{base}/api/studies/{study_id}") == 403
        assert request("POST", f"{base}/api/studies/{study_id}/rename", {"study_name": "x"}) == 403
        assert request("POST", f"{base}/api/studies", {"study_name": "new", "directions": ["minimize"]}) == 403
        assert request("POST", f"{base}/api/trials/1/tell", {"state": "Fail"}) == 403
        assert request("PUT", f"{base}/api/studies/{study_id}/note", {"version": 1, "body": "x"}) == 403
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "read-only" in err
    if "0.0.0.0" in extra:
        assert "reachable from other hosts" in err
    assert optuna.study.get_all_study_names(url) == ["kept"]
    assert len(optuna.load_study(study_name="kept", storage=url).trials) == 2


def test_loopback_default_is_writable(store):
    url, _ = store
    proc, base = serve(url)
    try:
        assert request("POST", f"{base}/api/studies", {"study_name": "made", "directions": ["minimize"]}) in (200, 201)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert "made" in optuna.study.get_all_study_names(url)
