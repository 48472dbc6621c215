"""A packed worker killed with SIGKILL on the real PostgreSQL: every one of its K trials is failed by the next
worker's heartbeat check, retried with its own values and seed, and resumed from its own checkpoint."""

from __future__ import annotations

import signal
import time

import optuna
import pytest
from optuna.trial import TrialState

from adamtune.storage import fail_stale
from conftest import postgres_url, study_view
from reliability_tests.workers import (
    epochs_of,
    finish,
    judged_stale,
    reliability_study,
    spawn,
    terminate_mid_transaction,
    trials,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
PACK = 3


def test_a_sigkilled_packed_workers_trials_are_all_retried_and_resumed(tmp_path):
    url = postgres_url()
    name = f"packkill_{int(time.time() * 1000) % 10**9}"
    # Checkpoints every epoch, so the kill after two reported epochs leaves two to resume from.
    study = reliability_study(tmp_path, name, n_trials=PACK, pack=PACK,
                              artifacts={"path": str(tmp_path / "artifacts"), "checkpoint_every": 0})
    try:
        victim = spawn("run", str(study), "--storage", url)

        def all_training():
            running = [t for t in trials(url, name) if t.state == TrialState.RUNNING]
            return running if len(running) == PACK and all(epochs_of(t) >= 2 for t in running) else None

        killed = wait_for(all_training, 120, f"{PACK} packed trials to report 2 epochs each")
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        for trial in killed:  # by the database's clock: the next worker's check fails them all
            wait_for(lambda t=trial: judged_stale(url, name, t), 30, f"trial {trial.number} to be judged stale")
        [(code, output)] = finish([spawn("run", str(study), "--storage", url)])
        assert code == 0, output

        everything = trials(url, name)
        assert all(t.state != TrialState.RUNNING for t in everything)
        records = {r.number: r for r in study_view(url, name).trials}
        for original in killed:
            assert next(t for t in everything if t.number == original.number).state == TrialState.FAIL
            retry = next(t for t in everything if t.user_attrs.get("retry_of") == original.number)
            assert retry.state == TrialState.COMPLETE and retry.params == original.params
            assert records[retry.number].config["seed"] == records[original.number].config["seed"]
            assert retry.user_attrs["resumed_epochs"] >= 2, "resumed from its own checkpoint, not epoch 0"
            assert sorted(retry.intermediate_values) == list(range(6)), "the retry's curve has no gap"
            assert len(records[retry.number].curve["train_loss"]) == 6
            assert retry.user_attrs["packed"] == PACK
    finally:
        if name in optuna.study.get_all_study_names(url):
            optuna.delete_study(study_name=name, storage=url)


def test_a_packed_worker_waits_out_its_terminated_sessions(tmp_path):
    """pg_terminate_backend on a packed worker's sessions inside a transaction while it trains K trials
    (AdminShutdown): as a solo worker, it waits for the store, fails and retries the trials it held (each
    resumes from its checkpoint) and goes on until the budget."""
    url = postgres_url()
    name = f"packdrop_{int(time.time() * 1000) % 10**9}"
    study = reliability_study(tmp_path, name, n_trials=4 * PACK, pack=PACK,
                              artifacts={"path": str(tmp_path / "artifacts"), "checkpoint_every": 0})

    def failed() -> int:
        return len([t for t in trials(url, name) if t.state == TrialState.FAIL])

    def complete() -> int:
        return len([t for t in trials(url, name) if t.state == TrialState.COMPLETE])

    try:
        worker = spawn("run", str(study), "--storage", url, log=tmp_path / "worker.log")
        for _ in range(10):  # until two kills broke the worker's own calls (one may end as its query did)
            wait_for(lambda: worker.poll() is not None or len(
                [t for t in trials(url, name) if t.state == TrialState.RUNNING and epochs_of(t) >= 1]) == PACK,
                120, f"{PACK} packed trials training")
            if worker.poll() is not None or failed() >= 2 * PACK:
                break
            before = failed(), complete()
            assert terminate_mid_transaction(worker, url) >= 1
            wait_for(lambda seen=before: worker.poll() is not None or failed() > seen[0] or complete() > seen[1],
                     120, "the worker to fail its trials or go on")
        [(code, output)] = finish([worker])
        assert code == 0, output
        everything = trials(url, name)
        assert all(t.state != TrialState.RUNNING for t in everything)
        assert len([t for t in everything if t.state == TrialState.COMPLETE]) >= 4 * PACK
        lost = [t for t in everything if t.state == TrialState.FAIL]
        assert lost, "a kill met the worker's own store call: the trials it held then were failed"
        for trial in lost:  # each retried once (a retry of a retry too), with its own values
            [retry] = [t for t in everything if t.system_attrs.get("retry_history", [None])[-1] == trial.number]
            assert retry.params == trial.params
    finally:
        if name in optuna.study.get_all_study_names(url):
            optuna.delete_study(study_name=name, storage=url)


def test_a_packed_workers_long_epochs_keep_every_trials_heartbeat(tmp_path):
    """A pack's epochs outlast the 2 s grace period while the test sweeps for stale trials all along (as
    every starting worker and every `adamtune trials` does): the worker beats all the trials it holds, so
    none is failed or retried."""
    url = postgres_url()
    name = f"packbeat_{int(time.time() * 1000) % 10**9}"
    study = reliability_study(tmp_path, name, n_trials=2, pack=2, epochs=2, model="resnet", baseline=False,
                              heartbeat={"interval": 1, "grace_period": 2, "max_retry": 3},
                              params={"batch_size": {"type": "fixed", "value": 8},
                                      "width": {"type": "fixed", "value": 64}})
    try:
        worker = spawn("run", str(study), "--storage", url, "--device", "cpu")
        watched = wait_for(lambda: name in optuna.study.get_all_study_names(url) and optuna.load_study(
            study_name=name, storage=url), 120, "the packed worker to create its study")
        sweeps, failed, deadline = 0, [], time.monotonic() + 600
        while worker.poll() is None and not failed and time.monotonic() < deadline:
            fail_stale(watched, url)
            sweeps += 1
            failed = [t.number for t in trials(url, name) if t.state == TrialState.FAIL]
            time.sleep(0.25)  # a sweep four times a second, as many workers starting trials would make
        if worker.poll() is None:
            worker.kill()
        assert not failed, f"trials {failed} were failed as stale while their worker trained them"
        [(code, output)] = finish([worker])
        assert code == 0, output
        everything = trials(url, name)
        records = study_view(url, name).trials
        pack_epoch = max(s for r in records for s in r.curve["seconds"]) * 2  # a slot's share of its pack's epoch
        assert pack_epoch > 2, f"a pack epoch ({pack_epoch:.1f} s) outlasted the grace period"
        assert sweeps > 2 and [t.state for t in everything] == [TrialState.COMPLETE] * 2, output
        assert not any("retry_of" in t.user_attrs for t in everything)
    finally:
        if name in optuna.study.get_all_study_names(url):
            optuna.delete_study(study_name=name, storage=url)
