"""A long study's rough life: the database server restarted under two workers (a cluster of the test's own),
and a soak of a few hundred trials on the real PostgreSQL with workers SIGKILLed in turn and restarted."""

from __future__ import annotations

import subprocess
import time

import pytest
from optuna.trial import TrialState

from reliability_tests.own_postgres import own_cluster
from reliability_tests.workers import (
    FINISHED,
    epochs_of,
    finish,
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


def finished_count(url: str, name: str) -> int:
    return len(trials(url, name, states=FINISHED))


def retry_history(trial) -> list[int]:
    """The trials `trial` retries, the first of the chain first (a retry of a killed retry has two). Optuna's
    `failed_trial` and adamtune's `retry_of` name the first of a chain only, so neither tells which FAIL
    trial a later retry answers."""
    return trial.system_attrs.get("retry_history") or []


def retried_trial(trial) -> int | None:
    """The FAIL trial that `trial` is the retry of: the last of its retry history."""
    return (retry_history(trial) or [None])[-1]


def assert_nothing_lost(all_trials, budget: int, workers: int) -> None:
    """Finished = the budget (README: N to N+W-1), nothing RUNNING or WAITING, every FAIL trial retried,
    and every retry that followed a checkpointed epoch resumed from it."""
    by_number = {t.number: t for t in all_trials}
    assert sorted(by_number) == list(range(len(all_trials))), "trial numbers have no gap"
    assert budget <= len([t for t in all_trials if t.state in FINISHED]) <= budget + workers - 1
    assert not [t.number for t in all_trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    for failed in (t for t in all_trials if t.state == TrialState.FAIL):
        retry = next((t for t in all_trials if retried_trial(t) == failed.number), None)
        assert retry is not None, f"FAIL trial {failed.number} was not retried"
        origin = failed.user_attrs.get("retry_of", failed.number)
        assert retry.user_attrs["retry_of"] == origin and by_number[origin].state == TrialState.FAIL
        # a trial failed before its values were stored (judged stale between ask and its first heartbeat) has
        # no configuration to carry over: its retry samples one
        assert retry.params == failed.params or not failed.params
        if retry.state == TrialState.COMPLETE:
            assert retry.user_attrs.get("resumed_epochs", 0) >= epochs_of(failed), \
                f"retry {retry.number} of trial {failed.number} did not resume from its checkpoint"


def test_a_postgresql_restart_mid_study_loses_nothing(tmp_path, record_property):
    started = time.monotonic()
    budget = 8
    with own_cluster() as cluster:
        url = cluster.url
        study = reliability_study(tmp_path, "restart", n_trials=budget, epochs=4)
        logs = [tmp_path / f"worker{i}.log" for i in range(2)]
        workers = [spawn("run", str(study), "--storage", url, log=log) for log in logs]
        try:
            wait_for(lambda: finished_count(url, "restart") >= 2
                     and any(running_trial_of(url, "restart", w.pid, 1) for w in workers), 180,
                     "two finished trials and one training")
            running = trials(url, "restart", states=(TrialState.RUNNING,))
            cluster.stop()  # fast: every session is terminated mid-study
            # Down until both workers have met it (a quick restart is absorbed by pre-pinged connections).
            wait_for(lambda: all("lost the study store" in log.read_text() for log in logs), 120,
                     "both workers to lose the store")
            cluster.start()
            results = finish(workers)
        finally:
            for w in workers:
                if w.poll() is None:
                    w.kill()
        assert [code for code, _ in results] == [0, 0], results
        all_trials = trials(url, "restart")
    assert_nothing_lost(all_trials, budget, 2)
    states = {t.number: t.state for t in all_trials}
    assert all(states[t.number] in FINISHED or any(t.number in retry_history(u) for u in all_trials)
               for t in running), "every trial running at the restart finished or was retried"
    assert any("retry_of" in t.user_attrs for t in all_trials), "the restart interrupted a trial"
    tally(record_property, "PostgreSQL stopped (-m fast) mid-study, started again", 2, all_trials, started)


def test_soak_workers_sigkilled_in_turn_lose_nothing(tmp_path, pg, record_property):
    """4 workers, 200 four-epoch trials; after every 25 more finished trials a worker is SIGKILLed mid-trial
    (after its first epoch's checkpoint) and a new one started in its place, at most 6 times, up to 50
    trials before the budget. Kills follow the study's progress, never the clock, and do not wait for the
    victims' retries: how many trials finish meanwhile depends on the machine. A victim still RUNNING when
    the budget is spent (its grace period not yet over) is picked up as a user would: once the store counts
    it stale, one more worker with room for the retries."""
    started = time.monotonic()
    url, names = pg
    name = unique("soak")
    names.append(name)
    budget, every, max_kills = 200, 25, 6
    # ~0.1 s per epoch. Four epochs: a worker is killed only outside a transaction, and with two, the rest of
    # a trial after its first report is mostly store calls once the worker stopped drawing a picture per trial.
    study = reliability_study(tmp_path, name, n_trials=budget, epochs=4, model="mlp")
    workers: list[subprocess.Popen] = [spawn("run", str(study), "--storage", url) for _ in range(4)]
    killed = []
    try:
        mark = 0
        while len(killed) < max_kills and mark + every <= budget - 2 * every:
            # Always reached: the workers do not stop before the budget, which is above the mark.
            mark = wait_for(lambda m=mark: (n := finished_count(url, name)) >= m + every and n, 300,
                            f"{every} more finished trials", interval=0.2)
            if mark > budget - 2 * every:
                break
            slot = len(killed) % len(workers)
            killed.append(kill_mid_trial(workers[slot], url, name, min_epochs=1))
            workers[slot] = spawn("run", str(study), "--storage", url)
        results = finish(workers, timeout=600)
        assert [code for code, _ in results] == [0] * len(workers), results
        pending = [v for v in killed if not any(retried_trial(t) == v.number
                                                for t in trials(url, name, states=FINISHED))]
        ending_budget, ending_workers = budget, len(workers)
        if pending:
            def failed_or_stale(victim) -> bool:  # failed already (its retry queued), or the next worker will
                now = next(t for t in trials(url, name) if t.number == victim.number)
                return now.state != TrialState.RUNNING or judged_stale(url, name, victim)

            for victim in pending:
                wait_for(lambda v=victim: failed_or_stale(v), 60, f"trial {victim.number} to be failed or stale")
            ending_budget, ending_workers = finished_count(url, name) + len(pending), 1
            [(code, output)] = finish([spawn("run", str(study), "--storage", url, "--n-trials", str(ending_budget))])
            assert code == 0, output
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    assert len(killed) >= 3, f"only {len(killed)} kills before the budget ran low"
    all_trials = trials(url, name)
    assert_nothing_lost(all_trials, ending_budget, ending_workers)
    for victim in killed:
        retry = next(t for t in all_trials if victim.number in retry_history(t) and t.state in FINISHED)
        assert retry.state == TrialState.PRUNED or retry.user_attrs["resumed_epochs"] >= 1
    tally(record_property, f"soak: {budget} trials, {len(killed)} workers SIGKILLed and restarted", 4,
          all_trials, started)
