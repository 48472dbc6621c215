"""`adamtune dashboard` serves optuna-dashboard on the same store, checked over real HTTP."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
import urllib.request

import optuna
import pytest

from conftest import ADAMTUNE

pytestmark = pytest.mark.slow  # a dashboard server process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_dashboard(url: str) -> tuple[subprocess.Popen, int]:
    """`adamtune dashboard` on the store, started and accepting connections (within 60 s), and its port."""
    port = free_port()
    server = subprocess.Popen([ADAMTUNE, "dashboard", "--storage", url, "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, port
        except OSError:
            if server.poll() is not None or time.monotonic() >= deadline:
                server.kill()
                raise AssertionError(server.communicate()[1]) from None
            time.sleep(0.2)


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


def test_the_url_is_printed_once_the_dashboard_accepts_connections(tmp_path):
    """A person (or a script) that opens the URL the moment it is printed is answered, not refused."""
    url = f"sqlite:///{tmp_path / 'd.db'}"
    optuna.create_study(storage=url, study_name="opened")
    port = free_port()
    server = subprocess.Popen([ADAMTUNE, "dashboard", "--storage", url, "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()  # the first line it prints; '' if it died first
        assert line == f"optuna-dashboard (read-write) for {url} on http://127.0.0.1:{port}/\n", line
        socket.create_connection(("127.0.0.1", port), timeout=5).close()  # at once, no retry: it listens
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=30) as response:
            assert "opened" in {s["study_name"] for s in json.loads(response.read())["study_summaries"]}
    finally:
        server.terminate()
        server.communicate(timeout=10)


def test_dashboard_shows_each_trials_note_and_learning_curve(tmp_path):
    from adamtune.studies import load_study_file, run_study
    from conftest import write_study

    url = f"sqlite:///{tmp_path / 'd.db'}"
    spec = load_study_file(write_study(tmp_path, "curves", n_trials=3, epochs=2))
    run_study(spec, url, progress=False, artifacts=str(tmp_path / "art"))
    port = free_port()
    server = subprocess.Popen([ADAMTUNE, "dashboard", "--storage", url, "--port", str(port),
                               "--artifacts", str(tmp_path / "art")], stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                studies = json.loads(urllib.request.urlopen(f"{base}/api/studies", timeout=5).read())
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.3)
        study_id = studies["study_summaries"][0]["study_id"]
        detail = json.loads(urllib.request.urlopen(f"{base}/api/studies/{study_id}", timeout=10).read())
        for trial in detail["trials"]:
            assert trial["note"]["body"].startswith("**Adam"), "the note says the configuration in words"
            pngs = [a for a in trial["artifacts"] if a["mimetype"] == "image/png"]
            assert len(pngs) == 1
            png = urllib.request.urlopen(
                f"{base}/artifacts/{study_id}/{trial['trial_id']}/{pngs[0]['artifact_id']}", timeout=10).read()
            assert png.startswith(b"\x89PNG")
        best = next(t for t in detail["trials"] if t["number"] == detail["best_trials"][0]["number"])
        assert any(a["mimetype"] == "application/json" for a in best["artifacts"]), "best trial's config"
    finally:
        server.terminate()
        server.communicate(timeout=10)


def test_a_stalled_client_does_not_block_the_next_one(tmp_path):
    """One half-open connection (a request that never finishes) froze optuna-dashboard's own single-threaded
    server for everyone; the dashboard's server answers others meanwhile."""
    url = f"sqlite:///{tmp_path / 'd.db'}"
    optuna.create_study(storage=url, study_name="watched")
    server, port = listening_dashboard(url)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as stalled:
            stalled.sendall(b"GET /api/studies HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never end
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=20) as response:
                names = [s["study_name"] for s in json.loads(response.read())["study_summaries"]]
        assert names == ["watched"]
    finally:
        server.terminate()
        server.communicate(timeout=10)


def test_more_slow_clients_than_connections_do_not_block_a_get(tmp_path):
    """105 clients each trickling a header line every 2 s (never silent, so the channel timeout never fires)
    held all 100 of waitress's connections and every GET waited until they closed; a request's headers now
    have HEADER_TIMEOUT seconds, so the GET is answered within a bound."""
    from adamtune.results._dashboard import CLEANUP_INTERVAL, CONNECTION_LIMIT, HEADER_TIMEOUT

    url = f"sqlite:///{tmp_path / 'd.db'}"
    optuna.create_study(storage=url, study_name="flooded")
    server, port = listening_dashboard(url)
    slow: list[socket.socket] = []
    stop = threading.Event()

    def trickle() -> None:  # a header line to every slow client every 2 s, for at most 90 s
        deadline = time.monotonic() + 90
        line = 0
        while not stop.wait(2) and time.monotonic() < deadline:
            line += 1
            for client in slow:
                with contextlib.suppress(OSError):
                    client.sendall(f"X-Slow-{line}: {line}\r\n".encode())

    try:
        for _ in range(CONNECTION_LIMIT + 5):
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            client.sendall(b"GET /api/studies HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never end
            slow.append(client)
        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        bound = HEADER_TIMEOUT + CLEANUP_INTERVAL + 15  # the slow ones' bound, then the answer itself
        started = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=bound + 30) as response:
            names = [s["study_name"] for s in json.loads(response.read())["study_summaries"]]
        assert names == ["flooded"]
        assert time.monotonic() - started < bound
    finally:
        stop.set()
        for client in slow:
            client.close()
        server.terminate()
        server.communicate(timeout=10)
