"""optuna-dashboard in a real browser: `adamtune dashboard` serves a study with a pruned trial, and its
trial table (0.21: the table under "Smart Selection") shows every trial, its state and its parameters."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

import pytest
from optuna.trial import TrialState

from _chromium import artifact, chromium, free_port
from adamtune.studies import load_study_file, run_study
from conftest import ADAMTUNE, write_study

pytestmark = pytest.mark.slow  # a dashboard server and a browser

# Header texts and cell texts of the first table on the page; sortable headers carry a hidden "sorted ..." label.
READ_TABLE = """table => [
    [...table.querySelectorAll('thead th')].map(th => th.textContent.replace(/sorted (ascending|descending)$/, '')),
    [...table.querySelectorAll('tbody tr')].map(tr => [...tr.querySelectorAll('td')].map(td => td.textContent)),
]"""


def wait_for_study_id(port: int, name: str, server: subprocess.Popen) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as response:
                studies = {s["study_name"]: s["study_id"] for s in json.loads(response.read())["study_summaries"]}
                return studies[name]
        except OSError:
            assert server.poll() is None, server.communicate()[1]
            time.sleep(0.2)
    pytest.fail("the dashboard did not answer within 30 s")


def test_trial_table_shows_the_trials_their_parameters_and_the_pruned_one(tmp_path):
    url = f"sqlite:///{tmp_path / 'browsed.db'}"
    pruner = {"type": "median", "n_startup_trials": 1, "n_warmup_steps": 0}  # prunes as soon as it can
    spec = load_study_file(write_study(tmp_path, "browsed", n_trials=4, epochs=2, pruner=pruner))
    trials = run_study(spec, url, device="cpu", progress=False).study.get_trials()
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and len(pruned) < len(trials), f"need complete and pruned trials: {[t.state for t in trials]}"

    port = free_port()
    server = subprocess.Popen([ADAMTUNE, "dashboard", "--storage", url, "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        study_id = wait_for_study_id(port, "browsed", server)
        with chromium(tmp_path / "profile") as context:
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}/dashboard/studies/{study_id}/smartSelection")
            table = page.locator("table").filter(has=page.locator("th", has_text="Param lr"))
            table.wait_for(timeout=20_000)
            headers, rows = table.evaluate(READ_TABLE)
            page.screenshot(path=artifact("dashboard_trial_table.png"), full_page=True)

            assert headers[:3] == ["Number", "State", "Value"]
            assert len(rows) == len(trials)
            by_number = {int(r[0]): dict(zip(headers, r)) for r in rows}
            assert sorted(by_number) == [t.number for t in trials]
            for t in trials:
                row = by_number[t.number]
                assert row["State"] == t.state.name.capitalize(), t.number  # "Complete", "Pruned"
                assert float(row["Value"]) == pytest.approx(t.value), t.number
                for name, value in t.params.items():  # Optuna's names: one_minus_beta2, not beta2
                    cell = row[f"Param {name}"]
                    if isinstance(value, float):
                        assert float(cell) == pytest.approx(value), (t.number, name)
                    else:
                        assert cell == str(value), (t.number, name)
                absent = {h for h in headers if h.startswith("Param ")} - {f"Param {n}" for n in t.params}
                assert all(row[h] == "" for h in absent), t.number  # e.g. weight_decay without use_weight_decay

            # The pruned trial on its own page, as someone clicking through would see it.
            number = pruned[0].number
            page.goto(f"http://127.0.0.1:{port}/dashboard/studies/{study_id}/trials?numbers={number}")
            heading = page.get_by_role("heading", name=f"Trial {number} (trial_id=")
            heading.wait_for(timeout=20_000)
            chip = heading.locator("xpath=following-sibling::*[1]")
            assert chip.inner_text() == "Pruned"
            page.screenshot(path=artifact("dashboard_pruned_trial.png"))
    finally:
        server.terminate()
        _, err = server.communicate(timeout=10)
    assert f"on http://127.0.0.1:{port}/" in err
