"""`adamtune dashboard` serves optuna-dashboard on the same store, checked over real HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request

import optuna

from conftest import ADAMTUNE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dashboard_lists_the_studies_of_the_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    study = optuna.create_study(storage=url, study_name="watched")
    study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1e-1, log=True), n_trials=3)
    port = free_port()
    server = subprocess.Popen([ADAMTUNE, "dashboard", "--storage", url, "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        body = None
        deadline = time.monotonic() + 60
        while body is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as response:
                    body = json.loads(response.read())
            except OSError:
                assert server.poll() is None, server.communicate()[1]
                time.sleep(0.3)
        assert body is not None, "dashboard did not answer within 60 s"
        studies = {s["study_name"]: s for s in body["study_summaries"]}
        assert "watched" in studies
        detail_url = f"http://127.0.0.1:{port}/api/studies/{studies['watched']['study_id']}"
        with urllib.request.urlopen(detail_url, timeout=10) as response:
            detail = json.loads(response.read())
        assert len(detail["trials"]) == 3
    finally:
        server.terminate()
        _, err = server.communicate(timeout=10)
    assert f"on http://127.0.0.1:{port}/" in err
