"""A Python data entry that never returns: the command says what it waits on, and Ctrl-C says truly what it
stopped (no trial existed, nothing was stored), not that a trial was failed and retried."""

from __future__ import annotations

import signal

import pytest

from conftest import write_study
from reliability_tests.workers import finish, spawn, wait_for

pytestmark = pytest.mark.slow  # real adamtune processes

SLEEPY = "import time\n\n\ndef load():\n    time.sleep(3600)\n"


@pytest.mark.parametrize("command", ["check", "run"])
def test_ctrl_c_while_a_data_entry_never_returns_says_what_it_stopped(tmp_path, command):
    (tmp_path / "sleepy.py").write_text(SLEEPY)
    study = write_study(tmp_path, "sleepy_data", dataset={"type": "python", "entry": "sleepy:load"},
                        search_space=["adam", "batch", "mlp"], exclude=[])
    store = ["--storage", f"sqlite:///{tmp_path / 'studies.db'}"] if command == "run" else []
    log = tmp_path / "stderr.txt"
    worker = spawn(command, str(study), *store, log=log)
    wait_for(lambda: "loading data from python sleepy:load ...\n" in log.read_text() or worker.poll() is not None,
             120, "the line saying what is waited on")
    assert worker.poll() is None, log.read_text()
    worker.send_signal(signal.SIGINT)
    (code, output), = finish([worker], timeout=60)
    assert code == 130, output
    assert output == ("loading data from python sleepy:load ...\n"
                      "adamtune: stopped by SIGINT while loading data from python sleepy:load; no trial had started "
                      "and nothing was written to the store\n")
    assert not (tmp_path / "studies.db").exists()
