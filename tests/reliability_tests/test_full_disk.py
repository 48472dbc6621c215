"""A disk that fills up under a running worker, for real (a small tmpfs filled to ENOSPC): under the
artifacts directory the trial is failed with its reason and retried later; under the SQLite store the
worker stops at once with the real reason instead of waiting it out as if the network were down."""

from __future__ import annotations

import time

import optuna
import pytest
from optuna.trial import TrialState

from adamtune.studies import load_study_file, run_study
from conftest import adamtune, write_study
from reliability_tests.workers import epochs_of, finish, reliability_study, spawn, tally, trials, wait_for
from small_filesystems import fill, tmpfs

pytestmark = pytest.mark.slow  # starts processes or trains a study


def training(url: str, name: str, pid: int):
    """The trial worker `pid` is training, once it has reported an epoch (so a checkpoint exists)."""
    return next((t for t in trials(url, name) if t.state == TrialState.RUNNING and epochs_of(t) >= 1
                 and t.user_attrs.get("worker", "").endswith(f":{pid}")), None)


def by_state(all_trials, state: TrialState) -> list:
    return [t for t in all_trials if t.state == state]


def test_full_artifacts_disk_fails_the_trial_queues_its_retry_and_stops_the_worker(tmp_path, record_property):
    started = time.monotonic()
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    with tmpfs(tmp_path / "artifacts") as artifacts:
        study = reliability_study(tmp_path, "full_artifacts", n_trials=2, epochs=25,
                                  artifacts={"path": str(artifacts)})
        worker = spawn("run", str(study), "--storage", url)
        victim = wait_for(lambda: training(url, "full_artifacts", worker.pid), 120, "a trial with one epoch")
        filler = fill(artifacts)
        (code, output), = finish([worker], timeout=120)

        assert code == 1, output
        assert "Traceback" not in output and "Warning" not in output, output
        said = [line for line in output.splitlines() if "No space left on device" in line]
        assert said == [(f"adamtune: error: trial {victim.number} stopped by a file system error: No space left on "
                         f"device (artifacts directory {artifacts}); it was marked FAIL and its retry queued, which "
                         "resumes from its last checkpoint; fix the disk, then run again")], output
        after = trials(url, "full_artifacts")
        failed = by_state(after, TrialState.FAIL)
        assert [t.number for t in failed] == [victim.number]
        assert failed[0].user_attrs["fail_reason"] == "file system error: No space left on device"
        retry, = by_state(after, TrialState.WAITING)
        assert retry.params == victim.params and "fail_reason" not in retry.user_attrs
        assert len(after) == 2, "the worker stopped instead of failing trial after trial"

        filler.unlink()
        (code, output), = finish([spawn("run", str(study), "--storage", url)])
    assert code == 0, output
    all_trials = trials(url, "full_artifacts")
    resumed = next(t for t in all_trials if t.user_attrs.get("retry_of") == victim.number)
    assert resumed.state == TrialState.COMPLETE and resumed.user_attrs["resumed_epochs"] >= 1
    tally(record_property, "artifacts disk full mid-trial, then a new worker", 1, all_trials, started)


def test_full_disk_under_the_sqlite_store_stops_the_worker_at_once(tmp_path, record_property):
    started = time.monotonic()
    with tmpfs(tmp_path / "db") as db:
        url = f"sqlite:///{db / 'studies.db'}"
        # reconnect_timeout 300 s: were the full disk taken for a lost connection, the worker would still be
        # waiting when `finish` gives up on it. Epochs of seconds against a 1 s heartbeat: the heartbeat
        # thread meets the full disk before the trial does.
        study = reliability_study(tmp_path, "full_store", n_trials=3, epochs=4, model="resnet", reconnect_timeout=300,
                                  params={"batch_size": {"type": "fixed", "value": 16},
                                          "width": {"type": "fixed", "value": 96}})
        worker = spawn("run", str(study), "--storage", url)
        victim = wait_for(lambda: training(url, "full_store", worker.pid), 120, "a trial with one epoch")
        filler = fill(db)
        (code, output), = finish([worker], timeout=120)

        assert code == 1, output
        assert "Traceback" not in output and "lost the study store" not in output, output
        said = [line for line in output.splitlines() if "database or disk is full" in line]
        assert said == [(f"adamtune: error: study store {url}: OperationalError: database or disk is full; trial "
                         f"{victim.number} is left RUNNING (the store refused to mark it FAIL): once its heartbeat "
                         "is 3 s old, the next worker or `adamtune trials` fails it and queues its retry")], output

        filler.unlink()
        after = trials(url, "full_store")
        assert not by_state(after, TrialState.FAIL), "no trial was started and failed on the full disk"
        assert [t.number for t in by_state(after, TrialState.RUNNING)] == [victim.number]
        assert len(after) == victim.number + 1

        def failed_by_listing():
            assert adamtune("trials", "full_store", "--storage", url).returncode == 0
            return by_state(trials(url, "full_store"), TrialState.FAIL)

        assert [t.number for t in wait_for(failed_by_listing, 60, "the stale trial to be failed")] == [victim.number]
        all_trials = trials(url, "full_store")
    assert not by_state(all_trials, TrialState.RUNNING)
    retry, = by_state(all_trials, TrialState.WAITING)
    assert retry.params == victim.params
    tally(record_property, "SQLite store's disk full mid-trial", 1, all_trials, started)


def test_a_fail_trial_whose_retry_the_full_store_refused_is_retried_by_the_next_worker(tmp_path):
    """A full disk under the store takes the trial's small FAIL write but refuses its queued retry ("trial N is
    FAIL and its retry could not be queued"): that is the state left behind, a FAIL trial with no retry. The
    next worker, with room, queues its retry and runs it; nothing failed is lost."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    spec = load_study_file(write_study(tmp_path, "owed", n_trials=1, seed=0))
    run_study(spec, url, progress=False)
    study = optuna.load_study(study_name="owed", storage=url)
    done, = study.get_trials()
    study.add_trial(optuna.create_trial(state=TrialState.FAIL, params=done.params, distributions=done.distributions,
                                        user_attrs={"worker": "gone:1"}))
    failed = study.get_trials()[-1]
    given_up = optuna.create_trial(state=TrialState.FAIL, params=done.params, distributions=done.distributions,
                                   system_attrs={"failed_trial": 0, "retry_history": [0, 0, 0]})
    study.add_trial(given_up)  # max_retry (3) retries behind it already: not retried again
    study.add_trial(optuna.create_trial(state=TrialState.FAIL, params=done.params, distributions=done.distributions,
                                        user_attrs={"fail_reason": "model returned 11 logits", "refused": True}))

    run_study(load_study_file(write_study(tmp_path, "owed", n_trials=2, seed=0)), url, progress=False)
    after = study.get_trials()
    retry, = [t for t in after if t.user_attrs.get("retry_of") == failed.number]
    assert retry.state == TrialState.COMPLETE and retry.params == failed.params
    assert len(after) == 5, "neither the trial given up after max_retry retries nor the refused one was queued"


def study_with_a_failed_copy(tmp_path, name: str):
    """An SQLite study with one finished trial and a FAIL copy of it without a retry, as a full disk leaves it."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    spec = load_study_file(write_study(tmp_path, name, n_trials=1, seed=0))
    run_study(spec, url, progress=False)
    study = optuna.load_study(study_name=name, storage=url)
    done, = study.get_trials()
    study.add_trial(optuna.create_trial(state=TrialState.FAIL, params=done.params, distributions=done.distributions))
    return spec, url, study


def test_workers_starting_together_queue_an_owed_retry_once(tmp_path):
    """Every starting worker looks for owed retries; of several looking at once, the one whose claim row goes
    in first queues it, and the others leave it (a duplicate would spend the budget twice on one point)."""
    from adamtune.storage import claim_retry
    from adamtune.studies._retries import queue_owed_retries as _queue_owed_retries

    spec, url, study = study_with_a_failed_copy(tmp_path, "together")
    owed = study.get_trials()[-1]
    assert claim_retry(study, owed._trial_id, "other-host:7", lease=60), "another worker's claim went in first"
    _queue_owed_retries(study, spec)
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE, TrialState.FAIL], "left to its claimer"
    assert claim_retry(study, owed._trial_id, "other-host:7", lease=60), "its claimer, trying again, still holds it"


def test_a_claim_whose_claimer_died_before_queueing_is_taken_over(tmp_path):
    """A worker that claimed an owed retry and died before queueing it (SIGKILL, a lost machine) leaves a
    claim and no retry: once the claim is older than the heartbeat's grace period, the next worker takes it
    over and queues the retry, so the failed trial is not lost; its old claimer, back, no longer holds it."""
    from adamtune.storage import claim_retry
    from adamtune.studies._retries import queue_owed_retries as _queue_owed_retries

    spec, url, study = study_with_a_failed_copy(tmp_path, "dead_claimer")
    owed = study.get_trials()[-1]
    long_ago = time.time() - 10 * spec.heartbeat.grace_period
    assert claim_retry(study, owed._trial_id, "gone-host:1", lease=60, now=long_ago)
    _queue_owed_retries(study, spec)
    after = study.get_trials()
    assert [t.state for t in after] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING], "retry queued"
    assert after[-1].system_attrs.get("failed_trial") == owed.number
    assert not claim_retry(study, owed._trial_id, "gone-host:1", lease=60), "the taken-over claim is not its any more"


def test_a_refused_retry_says_what_to_do(tmp_path):
    """The store takes reads but refuses the retry (here a read-only SQLite file, refused as a full disk is):
    the error says the trial is FAIL, that its retry was not queued, and what the user does about it."""
    from types import SimpleNamespace

    from adamtune.studies._solo import store_refused as _store_refused

    spec, url, study = study_with_a_failed_copy(tmp_path, "refused")
    read_only = f"sqlite:///file:{tmp_path / 'studies.db'}?mode=ro&uri=true"
    refusing = optuna.load_study(study_name="refused", storage=read_only)
    error = _store_refused(RuntimeError("database or disk is full"), refusing, SimpleNamespace(current=1), spec,
                           read_only)
    assert str(error).endswith("; trial 1 is FAIL and its retry could not be queued: make room for the store (free "
                               "its disk, make it writable), then run again: the next worker queues the retry, which "
                               "resumes from the trial's last checkpoint")
    assert len(study.get_trials()) == 2, "nothing was queued"
