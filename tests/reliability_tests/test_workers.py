"""Many workers, one study, on the real PostgreSQL: a SIGKILLed worker, dropped connections, SIGTERM,
racing starts, and several local processes on SQLite and on Optuna's file journal."""

from __future__ import annotations

import signal
import time

import optuna
import pytest
import sqlalchemy
import torch
from optuna.trial import TrialState

from adamtune.results import full_curve
from conftest import adamtune, study_view
from reliability_tests.workers import (
    FINISHED,
    epochs_of,
    finish,
    frozen,
    judged_stale,
    kill_mid_trial,
    reliability_study,
    running_trial_of,
    spawn,
    tally,
    trials,
    unique,
    wait_for,
)

pytestmark = pytest.mark.slow  # worker processes training real studies


def reported_epochs(url, name) -> int:
    return sum(epochs_of(t) for t in trials(url, name))


def assert_full_curves(all_trials, epochs):
    for t in all_trials:
        if t.state == TrialState.COMPLETE:
            assert sorted(t.intermediate_values) == list(range(epochs)), f"trial {t.number} curve has a gap"
            assert epochs_of(t) == epochs


def test_sigkilled_worker_trial_is_retried_and_resumed(tmp_path, pg, record_property):
    started = time.monotonic()
    url, names = pg
    name = unique("kill")
    names.append(name)
    study = reliability_study(tmp_path, name)
    workers = [spawn("run", str(study), "--storage", url) for _ in range(4)]
    victim = workers[1]
    killed = wait_for(lambda: running_trial_of(url, name, victim.pid, 2), 120, "the victim to train 2 epochs")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    results = finish([w for w in workers if w is not victim])
    assert [code for code, _ in results] == [0, 0, 0], results

    all_trials = trials(url, name)
    finished = [t for t in all_trials if t.state in FINISHED]
    assert 10 <= len(finished) <= 10 + 4 - 1
    originals = [t for t in all_trials if t.user_attrs.get("baseline") and "retry_of" not in t.user_attrs]
    assert len(originals) == 1, "one baseline (a retry of it inherits the mark)"
    assert all(t.state != TrialState.RUNNING for t in all_trials), "no trial is left RUNNING"
    assert next(t for t in all_trials if t.number == killed.number).state == TrialState.FAIL
    retry = next(t for t in all_trials if t.user_attrs.get("retry_of") == killed.number)
    assert retry.state == TrialState.COMPLETE
    assert retry.params == killed.params
    records = {t.number: t for t in study_view(url, name).trials}
    assert records[retry.number].config["seed"] == records[killed.number].config["seed"]
    assert retry.user_attrs["resumed_epochs"] >= 2, "the retry resumed from the checkpoint, not epoch 0"
    assert_full_curves(all_trials, 6)
    tally(record_property, "SIGKILL one worker mid-trial (PostgreSQL)", 4, all_trials, started)
    assert not list((tmp_path / "artifacts" / name).rglob("checkpoint.pt*")), "checkpoints are removed"
    assert list((tmp_path / "artifacts" / name / "best").glob("*/model.pt")), "under the study's uid"


def test_a_trial_checkpointed_on_an_interval_is_saved_less_often_and_still_resumes(tmp_path, pg):
    """With a long `checkpoint_every`, a solo trial writes its checkpoint after its first epoch and not after
    each later one; SIGKILLed after 3 epochs, its retry resumes from that first epoch, with no gap."""
    url, names = pg
    name = unique("interval")
    names.append(name)
    # 60 epochs of a few ms each: long enough that the worker is still training when the poll sees epoch 3
    # (with 8, a loaded machine's poll came after the whole trial had ended).
    epochs = 60
    study = reliability_study(tmp_path, name, n_trials=1, epochs=epochs,
                              artifacts={"path": str(tmp_path / "artifacts"), "checkpoint_every": 3600})
    victim = kill_mid_trial(spawn("run", str(study), "--storage", url), url, name, min_epochs=3)
    checkpoint, = (tmp_path / "artifacts" / name / "checkpoints").rglob("checkpoint.pt")
    assert len(torch.load(checkpoint, weights_only=True)["history"]) == 1, "saved once, not after every epoch"
    wait_for(lambda: judged_stale(url, name, victim), 60, "the store to judge the killed worker's trial stale")
    (code, output), = finish([spawn("run", str(study), "--storage", url)])
    assert code == 0, output
    retry = next(t for t in trials(url, name) if t.user_attrs.get("retry_of") == victim.number)
    assert retry.state == TrialState.COMPLETE
    assert retry.user_attrs["resumed_epochs"] == 1, "resumed from its checkpoint, not from epoch 0"
    assert sorted(retry.intermediate_values) == list(range(epochs)), "the curve has no gap"


def test_a_retried_trial_reports_the_curve_of_an_uninterrupted_run(tmp_path, pg):
    """SIGKILL a worker after its trial reported 3 epochs; the retry resumes from the checkpoint and must give
    the very curve and best weights of the same trial (same params, same seed) run without a crash."""
    url, names = pg
    name, fresh_name = unique("resumed"), unique("uninterrupted")
    names += [name, fresh_name]
    fixed = {"batch_size": 32, "width": 8, "scheduler": "cosine", "warmup_epochs": 1, "rotation": 10.0,
             "random_erasing": 0.25, "dropout": 0.1}  # one trial, the baseline, with a schedule and augmentation
    changes = {"n_trials": 1, "epochs": 12, "params": {k: {"type": "fixed", "value": v} for k, v in fixed.items()}}
    uninterrupted_run = spawn("run", str(reliability_study(tmp_path, fresh_name, **changes)), "--storage", url)
    study = reliability_study(tmp_path, name, **changes)
    victim_worker = spawn("run", str(study), "--storage", url)
    victim = wait_for(lambda: running_trial_of(url, name, victim_worker.pid, 3), 120, "the trial to report 3 epochs")
    victim_worker.send_signal(signal.SIGKILL)
    victim_worker.wait()
    wait_for(lambda: judged_stale(url, name, victim), 60, "the store to judge the killed worker's trial stale")
    results = finish([spawn("run", str(study), "--storage", url), uninterrupted_run])
    assert [code for code, _ in results] == [0, 0], results

    retry = next(t for t in trials(url, name) if t.user_attrs.get("retry_of") == victim.number)
    uninterrupted, = trials(url, fresh_name)
    assert retry.state == uninterrupted.state == TrialState.COMPLETE
    retried_record = next(t for t in study_view(url, name).trials if t.number == retry.number)
    fresh_record, = study_view(url, fresh_name).trials
    assert retry.params == uninterrupted.params and retried_record.config == fresh_record.config
    assert 3 <= retry.user_attrs["resumed_epochs"] < 12, "resumed mid-run from the checkpoint"
    assert retry.intermediate_values == uninterrupted.intermediate_values
    for key in ("train_loss", "val_loss", "val_accuracy", "lr"):
        assert full_curve(retry, "val_loss")[key] == full_curve(uninterrupted, "val_loss")[key], key
    assert retry.value == uninterrupted.value
    best, fresh_best = (torch.load(next((tmp_path / "artifacts" / n / "best").glob("*/model.pt")))
                        for n in (name, fresh_name))
    assert best.keys() == fresh_best.keys() and all(torch.equal(best[k], fresh_best[k]) for k in best)


def test_dropped_connections_are_waited_out(tmp_path, pg, record_property):
    started = time.monotonic()
    url, names = pg
    name = unique("drop")
    names.append(name)
    study = reliability_study(tmp_path, name)
    workers = [spawn("run", str(study), "--storage", url) for _ in range(2)]
    wait_for(lambda: len([t for t in trials(url, name) if t.state == TrialState.COMPLETE]) >= 2, 120,
             "two complete trials")
    complete_before = {t.number: t.value for t in trials(url, name) if t.state == TrialState.COMPLETE}
    engine = sqlalchemy.create_engine(url)
    killed = 0
    for _ in range(3):
        with engine.connect() as conn:
            killed += conn.execute(sqlalchemy.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'adamtune' AND pid <> pg_backend_pid()")).scalar()
        reported = reported_epochs(url, name)  # any later report came through a new connection
        wait_for(lambda seen=reported: reported_epochs(url, name) > seen or all(w.poll() is not None for w in workers),
                 120, "a worker to report an epoch after its sessions were terminated")
    engine.dispose()
    assert killed >= 2, "the workers' sessions were terminated"
    results = finish(workers)
    assert [code for code, _ in results] == [0, 0], results
    all_trials = trials(url, name)
    assert len([t for t in all_trials if t.state in FINISHED]) >= 10
    after = {t.number: t.value for t in all_trials if t.state == TrialState.COMPLETE}
    assert complete_before.items() <= after.items(), "no COMPLETE trial is lost or changed"
    assert all(t.state != TrialState.RUNNING for t in all_trials)
    assert_full_curves(all_trials, 6)
    tally(record_property, "pg_terminate_backend x3 on workers' sessions", 2, all_trials, started)


def test_store_gone_for_longer_than_reconnect_timeout_is_a_clear_error(tmp_path):
    study = reliability_study(tmp_path, "gone", reconnect_timeout=2)
    worker = spawn("run", str(study), "--storage", "postgresql+psycopg://u:hush@127.0.0.1:1/none")
    (code, output), = finish([worker], timeout=60)
    assert code == 1
    assert "unreachable for 2 s (reconnect_timeout)" in output and "hush" not in output
    errors = [line for line in output.splitlines() if line.startswith("adamtune: error: ")]
    assert len(errors) == 1 and "unreachable for 2 s" in errors[0] and "Traceback" not in output, output


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_sigterm_fails_the_trial_queues_its_retry_and_exits(tmp_path, pg, record_property, signum):
    started = time.monotonic()
    url, names = pg
    name = unique("term")
    names.append(name)
    # A long grace period: the worker is frozen while `status` looks at it, and must not be judged dead.
    study = reliability_study(tmp_path, name, n_trials=2, epochs=25,
                              heartbeat={"interval": 1, "grace_period": 600, "max_retry": 3})
    worker = spawn("run", str(study), "--storage", url)
    victim = wait_for(lambda: running_trial_of(url, name, worker.pid, 1), 120, "a trial with one epoch")
    with frozen(worker, url):  # the trial is still running when SIGTERM arrives, on any machine
        status = adamtune("status", name, "--storage", url)
        assert status.returncode == 0, status.stderr
        running_row = next((line for line in status.stdout.splitlines() if line.startswith(f"{victim.number} ")), "")
        assert f":{worker.pid}" in running_row and " s ago" in running_row, status.stdout
        worker.send_signal(signum)
    (code, output), = finish([worker], timeout=30)
    assert code == 128 + signum, output  # 143, or 130 for Ctrl-C
    assert f"stopped by {signal.Signals(signum).name}" in output
    assert "Traceback" not in output and "failed with" not in output, "one line, not Optuna's crash log"
    states = {t.number: t for t in trials(url, name)}
    assert states[victim.number].state == TrialState.FAIL
    retry = [t for t in states.values() if t.state == TrialState.WAITING]
    assert len(retry) == 1 and retry[0].params == victim.params
    assert all(t.state != TrialState.RUNNING for t in states.values())

    (code, output), = finish([spawn("run", str(study), "--storage", url)])
    assert code == 0, output
    all_trials = trials(url, name)
    resumed = [t for t in all_trials if t.user_attrs.get("retry_of") == victim.number]
    assert resumed[0].state == TrialState.COMPLETE and resumed[0].user_attrs["resumed_epochs"] >= 1
    tally(record_property, f"{signal.Signals(signum).name} mid-trial, then a new worker", 1, all_trials, started)


def assert_distinct_settings(all_trials) -> None:
    """Workers started together never spend the budget twice on one point (a retry repeats its original's
    settings on purpose, and is left out)."""
    settings = [tuple(sorted(t.params.items())) for t in all_trials if "retry_of" not in t.user_attrs]
    assert len(set(settings)) == len(settings), f"{len(set(settings))} distinct settings in {len(settings)} trials"


def test_workers_started_at_once_create_one_study_with_one_baseline(tmp_path, pg, record_property):
    started = time.monotonic()
    url, names = pg
    name = unique("race")
    names.append(name)
    study = reliability_study(tmp_path, name, n_trials=4, epochs=1)
    results = finish([spawn("run", str(study), "--storage", url) for _ in range(4)])
    assert [code for code, _ in results] == [0, 0, 0, 0], results
    all_trials = trials(url, name)
    assert sum(bool(t.user_attrs.get("baseline")) for t in all_trials) == 1
    assert 4 <= len([t for t in all_trials if t.state in FINISHED]) <= 7
    assert len({t.user_attrs["worker"] for t in all_trials}) >= 2, "trials record which worker ran them"
    assert_distinct_settings(all_trials)
    tally(record_property, "4 workers racing create_study (PostgreSQL)", 4, all_trials, started)


@pytest.mark.parametrize("store", ["sqlite", "journal"])
def test_four_local_processes_with_workers_flag(tmp_path, store, record_property):
    started = time.monotonic()
    url = f"sqlite:///{tmp_path / 'w.db'}" if store == "sqlite" else f"journal:///{tmp_path / 'w.log'}"
    study = reliability_study(tmp_path, "local", n_trials=12, epochs=2)
    (code, output), = finish([spawn("run", str(study), "--storage", url, "--workers", "4")])
    assert code == 0, output
    assert "database is locked" not in output
    all_trials = trials(url, "local")
    assert 12 <= len([t for t in all_trials if t.state in FINISHED]) <= 15
    assert len({t.user_attrs["worker"] for t in all_trials}) >= 2
    assert_distinct_settings(all_trials)
    tally(record_property, f"run --workers 4 on {store}", 4, all_trials, started)


def test_a_long_epoch_is_not_mistaken_for_a_dead_worker(tmp_path, pg, record_property):
    """Epochs of several seconds (~6 s on 2 busy cores) against a 2 s grace period: the heartbeat thread keeps
    beating during the epoch, so the trial is neither failed nor retried (Optuna's "has already finished" trap)."""
    started = time.monotonic()
    url, names = pg
    name = unique("slow")
    names.append(name)
    study = reliability_study(tmp_path, name, n_trials=2, epochs=2, model="resnet", baseline=False,
                              heartbeat={"interval": 1, "grace_period": 2, "max_retry": 3},
                              params={"batch_size": {"type": "fixed", "value": 8},
                                      "width": {"type": "fixed", "value": 96}})
    # On the CPU, whatever the machine has: an accelerator would make the epoch shorter than the grace period.
    results = finish([spawn("run", str(study), "--storage", url, "--device", "cpu") for _ in range(2)])
    assert [code for code, _ in results] == [0, 0], results
    all_trials = trials(url, name)
    assert max(max(t.user_attrs["curve"]["seconds"]) for t in all_trials) > 2, "an epoch outlasted the grace period"
    assert 2 <= len(all_trials) <= 3 and all(t.state == TrialState.COMPLETE for t in all_trials)
    assert not any("retry_of" in t.user_attrs for t in all_trials)
    tally(record_property, "epochs longer than a 2 s grace period", 2, all_trials, started)


@pytest.mark.parametrize("command", ["trials", "studies"])
def test_listing_trials_fails_a_dead_workers_trial(tmp_path, pg, command):
    """With no other worker to notice, `adamtune trials` (or `studies`) fails the stale trial and queues its retry."""
    url, names = pg
    name = unique("stale")
    names.append(name)
    study = reliability_study(tmp_path, name, n_trials=2, epochs=200)  # killed long before its end
    worker = spawn("run", str(study), "--storage", url)
    victim = wait_for(lambda: running_trial_of(url, name, worker.pid, 1), 120, "a trial with one epoch")
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    wait_for(lambda: judged_stale(url, name, victim), 60, "the store to judge the killed worker's trial stale")
    listed = adamtune(*(["trials", name] if command == "trials" else ["studies"]), "--storage", url)
    assert listed.returncode == 0, listed.stderr
    states = {t.number: t.state for t in trials(url, name)}
    assert states[victim.number] == TrialState.FAIL
    assert list(states.values()).count(TrialState.WAITING) == 1


def test_a_worker_whose_trial_was_taken_over_goes_on(tmp_path, pg, record_property):
    """If other workers judge a live worker's trial stale (an overloaded host missing its heartbeats),
    they fail it and queue its retry; the live worker's writes are then refused, and it must go on
    with the next trial instead of crashing. The test plays the other worker, with Optuna's own callback."""
    started = time.monotonic()
    url, names = pg
    name = unique("taken")
    names.append(name)
    study_file = reliability_study(tmp_path, name, n_trials=3, epochs=25)
    worker = spawn("run", str(study_file), "--storage", url)
    victim = wait_for(lambda: running_trial_of(url, name, worker.pid, 1), 120, "a trial with one epoch")
    with frozen(worker, url):  # the trial cannot finish before the other worker's verdict
        study = optuna.load_study(study_name=name, storage=url)
        study.tell(victim.number, state=TrialState.FAIL)
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)(study, study.trials[victim.number])
    (code, output), = finish([worker])
    assert code == 0, output
    assert f"trial {victim.number} outlived its heartbeat grace period" in output
    all_trials = trials(url, name)
    retry = next(t for t in all_trials if t.user_attrs.get("retry_of") == victim.number)
    assert retry.state == TrialState.COMPLETE
    tally(record_property, "a live worker's trial failed as stale by another", 1, all_trials, started)
