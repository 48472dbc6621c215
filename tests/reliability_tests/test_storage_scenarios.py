"""Scenarios from Optuna's own storage tests, played against adamtune's wrapper with real processes on the
real PostgreSQL (the old-schema one on SQLite): many workers on one budget, non-finite values, two
processes failing one stale trial, a trial that kills its worker every time, a store of an older Optuna."""

from __future__ import annotations

import csv
import io
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from adamtune.results import full_curve
from conftest import adamtune, study_view
from reliability_tests.workers import (
    FINISHED,
    OLD_OPTUNA,
    finish,
    judged_stale,
    kill_mid_trial,
    reliability_study,
    spawn,
    tally,
    trials,
    unique,
    wait_for,
)

pytestmark = pytest.mark.slow  # worker processes training real studies

BASELINE_LR = 1e-3  # the adam fragment's default: only the baseline trial (and its retries) has it exactly

# A user model that turns to inf in its second epoch on the baseline's lr: a diverged trial.
DIVERGING_NETS = '''
import math
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, input_shape, num_classes, diverge):
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)
        self.diverge, self.batches = diverge, 0

    def forward(self, x):
        out = self.linear(x.flatten(1))
        if self.training and torch.is_grad_enabled():
            self.batches += 1
            if self.diverge and self.batches > 40:  # digits: 36 batches of 32 per epoch
                out = out * float("inf")
        return out


def build(input_shape, num_classes, params):
    return Net(input_shape, num_classes, params["lr"] == 1e-3)
'''

# A user model that SIGKILLs its own worker as soon as it trains with the baseline's lr (not in the
# forward pass `run` makes before it touches the store: that one is in eval mode, without gradients).
DOOMED_NETS = '''
import math
import os
import signal
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, input_shape, num_classes, doomed):
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)
        self.doomed = doomed

    def forward(self, x):
        if self.doomed and self.training and torch.is_grad_enabled():
            os.kill(os.getpid(), signal.SIGKILL)
        return self.linear(x.flatten(1))


def build(input_shape, num_classes, params):
    return Net(input_shape, num_classes, params["lr"] == 1e-3)
'''


def test_eight_workers_spend_one_budget_and_every_value_is_its_curves_best(tmp_path, pg, record_property):
    started = time.monotonic()
    url, names = pg
    name = unique("eight")
    names.append(name)
    # Nothing is killed here: a grace period that 8 processes on 2 busy cores cannot outlast, so no live
    # trial is taken for a dead one (that case has its own test in test_workers.py).
    study = reliability_study(tmp_path, name, n_trials=20, epochs=1,
                              heartbeat={"interval": 2, "grace_period": 60, "max_retry": 3})
    results = finish([spawn("run", str(study), "--storage", url) for _ in range(8)])
    assert [code for code, _ in results] == [0] * 8, results

    all_trials = trials(url, name)
    finished = [t for t in all_trials if t.state in FINISHED]
    assert 20 <= len(finished) <= 20 + 8 - 1, "README: with W workers the study ends with N to N+W-1"
    assert len(finished) == len(all_trials), [(t.number, t.state) for t in all_trials if t.state not in FINISHED]
    assert sorted(t.number for t in all_trials) == list(range(len(all_trials))), "trial numbers have no gap"
    assert len({t.user_attrs["worker"] for t in all_trials}) >= 2
    records = {r.number: r for r in study_view(url, name).trials}
    for t in all_trials:
        if t.state != TrialState.COMPLETE:
            continue
        record = records[t.number]
        curve = full_curve(t, "val_loss")["val_loss"]
        assert t.value == min(curve) == record.val_loss == curve[record.best_epoch], t.number
        assert [t.intermediate_values[e] for e in sorted(t.intermediate_values)] == curve, t.number
    tally(record_property, "8 workers, one budget of 20 (PostgreSQL)", 8, all_trials, started)


def test_infinite_and_nan_values_are_stored_and_read_back(tmp_path, pg, record_property):
    """A user model that diverges (inf logits, a NaN loss) is pruned with its reason; a trial holding
    +inf, -inf and NaN intermediate values and curve points (as Optuna's storage tests write) is read back
    by `trials`, `export` (JSON and CSV) and `report` without a traceback."""
    started = time.monotonic()
    url, names = pg
    name = unique("nonfinite")
    names.append(name)
    (tmp_path / "diverging_nets.py").write_text(DIVERGING_NETS)
    study = reliability_study(tmp_path, name, n_trials=3, epochs=3, model={"entry": "diverging_nets:build"})
    (code, output), = finish([spawn("run", str(study), "--storage", url)])
    assert code == 0, output

    diverged = next(t for t in trials(url, name) if t.params["lr"] == BASELINE_LR)
    assert diverged.state == TrialState.PRUNED
    assert diverged.user_attrs["pruned_reason"].startswith("diverged: training loss became nan in epoch 1")
    assert list(diverged.intermediate_values) == [0], "the finite epoch before it diverged is kept"
    values = [math.inf, -math.inf, math.nan]
    loaded = optuna.load_study(study_name=name, storage=url)
    loaded.add_trial(optuna.trial.create_trial(
        state=TrialState.PRUNED, params=diverged.params, distributions=diverged.distributions,
        intermediate_values=dict(enumerate(values)),
        user_attrs={"pruned_reason": "diverged: written with non-finite values",
                    "curve": {"train_loss": values, "val_loss": values, "val_accuracy": [0.1, math.nan, 0.1],
                              "lr": [1e-3] * 3, "seconds": [0.1] * 3}}))
    loaded.add_trial(optuna.trial.create_trial(  # complete, its value +inf: the worst, listed last
        state=TrialState.COMPLETE, value=math.inf, params=diverged.params, distributions=diverged.distributions,
        intermediate_values={0: math.inf}, user_attrs={"best_epoch": 0, "curve": {
            "train_loss": [math.inf], "val_loss": [math.inf], "val_accuracy": [0.1], "lr": [1e-3], "seconds": [0.1]}}))
    nonfinite, infinite = trials(url, name)[-2:]
    assert nonfinite.intermediate_values[0] == math.inf and nonfinite.intermediate_values[1] == -math.inf
    assert math.isnan(nonfinite.intermediate_values[2]), "NaN survives the store (as Optuna's tests require)"

    listed = adamtune("trials", name, "--all", "--storage", url)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith(f"{nonfinite.number} "))
    assert "written with non-finite values" in row, listed.stdout
    assert next(line for line in listed.stdout.splitlines() if line.startswith(f"{infinite.number} ")).split()[2] \
        == "inf", listed.stdout
    exported = adamtune("export", name, "--top", "5", "--storage", url)
    assert exported.returncode == 0, exported.stderr
    top = json.loads(exported.stdout, parse_constant=lambda c: pytest.fail(f"export wrote {c}: not JSON"))
    assert [t["trial"] for t in top][-1] == infinite.number and top[-1]["value"] is None, "inf is null in JSON"
    table = adamtune("export", name, "--format", "csv", "--storage", url)
    assert table.returncode == 0, table.stderr
    rows = {r["number"]: r for r in csv.DictReader(io.StringIO(table.stdout))}
    assert set(rows) == {str(t.number) for t in trials(url, name)}
    assert rows[str(nonfinite.number)]["state"] == "PRUNED" and rows[str(nonfinite.number)]["value"] == ""
    assert rows[str(infinite.number)]["value"] == "inf"
    report = adamtune("report", name, "-o", str(tmp_path / "report"), "--storage", url)
    assert report.returncode == 0 and "Traceback" not in report.stderr, report.stderr
    assert (tmp_path / "report" / "index.html").stat().st_size > 0
    tally(record_property, "diverged trial, +-inf and NaN values read back", 1, trials(url, name), started)


def test_two_processes_failing_one_stale_trial_queue_one_retry(tmp_path, pg, record_property):
    started = time.monotonic()
    url, names = pg
    name = unique("stale2")
    names.append(name)
    study = reliability_study(tmp_path, name, n_trials=2, epochs=4)
    worker = spawn("run", str(study), "--storage", url)
    victim = kill_mid_trial(worker, url, name)
    wait_for(lambda: judged_stale(url, name, victim), 60, "the store to judge the killed worker's trial stale")
    # Both fail it at once: two listings, started together, each running fail_stale_trials as it starts.
    results = finish([spawn("trials", name, "--storage", url) for _ in range(2)])
    assert [code for code, _ in results] == [0, 0], results
    assert not any("Traceback" in output for _, output in results), results

    after = trials(url, name)
    assert next(t for t in after if t.number == victim.number).state == TrialState.FAIL
    retries = [t for t in after if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1 and retries[0].state == TrialState.WAITING, [(t.number, t.state) for t in after]
    (code, output), = finish([spawn("run", str(study), "--storage", url)])
    assert code == 0, output
    all_trials = trials(url, name)
    retry = next(t for t in all_trials if t.number == retries[0].number)
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["retry_of"] == victim.number
    assert retry.user_attrs["resumed_epochs"] >= 1
    tally(record_property, "2 processes fail one stale trial at once", 1, all_trials, started)


def test_a_trial_that_kills_its_worker_every_time_is_given_up_after_max_retry(tmp_path, pg, record_property):
    started = time.monotonic()
    url, names = pg
    name = unique("doomed")
    names.append(name)
    max_retry = 2
    (tmp_path / "doomed_nets.py").write_text(DOOMED_NETS)
    study = reliability_study(tmp_path, name, n_trials=3, epochs=1, model={"entry": "doomed_nets:build"},
                              heartbeat={"interval": 1, "grace_period": 3, "max_retry": max_retry})
    deaths = 0
    for _ in range(max_retry + 3):  # bounded: one death per try, then a worker that finishes the study
        (code, output), = finish([spawn("run", str(study), "--storage", url)])
        if code == 0:
            break
        assert code == -signal.SIGKILL, output
        deaths += 1
        doomed = next(t for t in trials(url, name) if t.state == TrialState.RUNNING)
        wait_for(lambda t=doomed: judged_stale(url, name, t), 60, "the dead worker's trial to be stale")
    assert code == 0, output

    all_trials = trials(url, name)
    tries = [t for t in all_trials if t.params["lr"] == BASELINE_LR]
    assert deaths == len(tries) == 1 + max_retry, [(t.number, t.state) for t in tries]
    assert all(t.state == TrialState.FAIL for t in tries)
    assert [t.user_attrs.get("retry_of") for t in tries] == [None] + [tries[0].number] * max_retry
    assert len([t for t in all_trials if t.state in FINISHED]) == 3, "the study went on to spend its budget"
    assert all(t.state in (*FINISHED, TrialState.FAIL) for t in all_trials), "nothing RUNNING or WAITING"
    tally(record_property, f"a trial SIGKILLs its worker every time (given up after {max_retry} retries)", 1,
          all_trials, started, max_retry=max_retry)


def test_a_store_of_an_older_optuna_says_to_upgrade_then_works(tmp_path, old_optuna, record_property):
    """SQLite: the old release would need psycopg2 and an SQLAlchemy 1.4 dialect for PostgreSQL; the schema
    check and `optuna storage upgrade` are the same on both."""
    started = time.monotonic()
    url = f"sqlite:///{tmp_path / 'old.db'}"
    made = subprocess.run([str(old_optuna), "-c", (
        "import optuna, sys\n"
        "study = optuna.create_study(study_name='legacy', storage=sys.argv[1])\n"
        "study.optimize(lambda t: t.suggest_float('x', -1, 1) ** 2, n_trials=3)\n"
        "print(optuna.__version__)"), url], capture_output=True, text=True, timeout=120)
    assert made.returncode == 0 and made.stdout.strip() == OLD_OPTUNA, made.stderr
    study = reliability_study(tmp_path, "after_upgrade", n_trials=2, epochs=1)

    refused = adamtune("run", str(study), "--storage", url)
    assert refused.returncode == 1, refused.stderr
    errors = [line for line in refused.stderr.splitlines() if line.startswith("adamtune: error")]
    assert len(errors) == 1 and errors[0].endswith(f"run `optuna storage upgrade --storage {url}`"), refused.stderr
    assert "Traceback" not in refused.stderr
    assert adamtune("trials", "legacy", "--storage", url).returncode == 1

    optuna_cli = str(Path(sys.executable).parent / "optuna")
    upgrade = subprocess.run([optuna_cli, "storage", "upgrade", "--storage", url], capture_output=True, text=True,
                             timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    ran = adamtune("run", str(study), "--storage", url)
    assert ran.returncode == 0, ran.stderr
    legacy = adamtune("trials", "legacy", "--storage", url)
    assert legacy.returncode == 0 and legacy.stdout.count("complete") >= 3, legacy.stdout + legacy.stderr
    all_trials = trials(url, "after_upgrade")
    assert len([t for t in all_trials if t.state in FINISHED]) == 2
    tally(record_property, f"store of Optuna {OLD_OPTUNA}: upgrade message, upgrade, run (SQLite)", 1,
          all_trials, started)
