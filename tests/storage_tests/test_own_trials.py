"""A worker's study cache (storage/_own_trials.py): it stops re-reading its own RUNNING trials and writes
a trial's sampled values and attributes with its next report, read or end (or `write_pending`), so what it
shows of them must be what the store holds after each of those, and other workers' changes (new trials, a
trial of ours failed as stale, a queued retry claimed) must show as they do in the store."""

from __future__ import annotations

import sqlite3

import optuna
import pytest
import sqlalchemy
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from adamtune.storage import OwnTrialsCache, write_pending


def facts(trials):
    return [(t.number, t.state, t.values, t.params, t.distributions, t.intermediate_values, t.user_attrs,
             t.system_attrs) for t in trials]


@pytest.fixture
def two_workers(storage_url, study_name):
    """This worker's study through the cache, and another worker's through Optuna's plain storage."""
    ours = optuna.create_study(study_name=study_name, storage=OwnTrialsCache(optuna.storages.RDBStorage(storage_url)))
    theirs = optuna.load_study(study_name=study_name, storage=storage_url)
    yield ours, theirs


def assert_same_as_store(ours, theirs):
    assert facts(ours.get_trials(deepcopy=False)) == facts(theirs.get_trials(deepcopy=False))


def test_the_workers_own_running_trials_show_every_write(two_workers):
    ours, theirs = two_workers
    running = [ours.ask() for _ in range(3)]
    assert_same_as_store(ours, theirs)
    n = running[0].suggest_int("n", 1, 9)
    # A read of the trial from the store (pruners, tell) writes its values first.
    assert ours._storage.get_trial(running[0]._trial_id).params == {"n": n} == theirs.trials[0].params
    for step in range(3):
        for i, trial in enumerate(running):
            trial.suggest_float(f"x{step}", 0, 1)
            trial.suggest_categorical(f"c{step}", ["a", "b"])
            trial.set_user_attr(f"note{step}", {"epoch": step, "trial": i})
            ours._storage.set_trial_system_attr(trial._trial_id, f"sys{step}", [step])
            trial.report(0.1 * i + step, step)  # writes the values and attributes held for it first
            assert_same_as_store(ours, theirs)
    running[2].set_user_attr("worker", "w")
    write_pending(running[2])  # as training starts: what other readers see of it, at once
    assert_same_as_store(ours, theirs)
    for trial in running[:2]:
        trial.set_user_attr("curve", [1, 2])  # what a trial's end adds, stored just before its state
    ours.tell(running[0], 0.5)
    ours.tell(running[1], state=TrialState.PRUNED)
    assert_same_as_store(ours, theirs)
    assert [t.state for t in ours.get_trials()] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING]


def test_other_workers_trials_show_as_they_change(two_workers):
    ours, theirs = two_workers
    mine = ours.ask()
    other = theirs.ask()
    other.suggest_float("x", 0, 1)
    assert_same_as_store(ours, theirs)
    other.report(1.0, 0)
    assert_same_as_store(ours, theirs)
    theirs.tell(other, 2.0)
    mine.suggest_float("x", 0, 1)
    mine.set_user_attr("worker", "this one")
    mine.report(0.5, 0)  # the values drawn and the attribute reach the store with the trial's next report
    assert_same_as_store(ours, theirs)
    assert ours.best_value == 2.0


def test_a_trial_another_worker_failed_shows_failed_once_a_write_is_refused(two_workers):
    """Another worker failed this worker's trial as stale: the next write is refused, and from then on
    the trial is read from the store, FAIL, not kept RUNNING in this worker's copy."""
    ours, theirs = two_workers
    trial = ours.ask()
    theirs._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    with pytest.raises(UpdateFinishedTrialError):
        trial.report(1.0, 0)
    assert [t.state for t in ours.get_trials()] == [TrialState.FAIL]
    assert_same_as_store(ours, theirs)


def test_a_claimed_queued_trial_shows_running_with_its_values_and_is_claimed_once(two_workers):
    ours, theirs = two_workers
    theirs.enqueue_trial({"x": 0.25}, user_attrs={"retry_of": 7})
    first = ours.ask()
    assert first.suggest_float("x", 0, 1) == 0.25
    assert [t.state for t in ours.get_trials()] == [TrialState.RUNNING]
    second = ours.ask()  # a new trial, not the queued one again
    assert second.number != first.number
    first.report(0.5, 0)
    assert_same_as_store(ours, theirs)


def test_a_trial_that_ends_right_after_its_values_were_drawn_keeps_them(two_workers):
    ours, theirs = two_workers
    trial = ours.ask()
    x = trial.suggest_float("x", 0, 1)
    ours._storage.set_trial_state_values(trial._trial_id, TrialState.PRUNED)  # no report, no attribute between
    assert theirs.trials[0].params == {"x": x}
    assert_same_as_store(ours, theirs)


def test_a_packed_worker_gets_the_cache_on_sql_stores_only(tmp_path):
    from optuna.storages.journal import JournalFileBackend

    from adamtune.storage import for_packed_worker

    rdb = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    assert isinstance(for_packed_worker(rdb), OwnTrialsCache)
    journal = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "s.log")))
    assert for_packed_worker(journal) is journal  # Optuna's own handling, unchanged


def test_deleting_a_study_that_holds_our_running_trial_leaves_other_studies_readable(storage_url, study_name):
    """As Optuna's own cache does: after `delete_study` every other study still reads (it raised KeyError)."""
    cache = OwnTrialsCache(optuna.storages.RDBStorage(storage_url))
    doomed = optuna.create_study(study_name=study_name + "_doomed", storage=cache)
    kept = optuna.create_study(study_name=study_name, storage=cache)
    doomed.ask().suggest_float("x", 0, 1)  # held RUNNING, its value not yet written
    kept.ask()
    optuna.delete_study(study_name=doomed.study_name, storage=cache)
    assert [t.state for t in kept.get_trials()] == [TrialState.RUNNING]
    again = optuna.create_study(study_name=study_name + "_doomed", storage=cache)  # SQLite may reuse the id
    assert again.get_trials() == []
    optuna.delete_study(study_name=again.study_name, storage=cache)


def test_values_the_store_did_not_take_are_written_with_the_next_write(tmp_path):
    """A flush of a trial's values and attributes that the store refuses (here: SQLite locked by another
    writer, as a server going down refuses it) keeps them for the next write: the stored trial then holds
    them all."""
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    ours = optuna.create_study(study_name="locked", storage=OwnTrialsCache(
        optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 0.1}})))
    trial = ours.ask()
    drawn = {"x": trial.suggest_float("x", 0, 1), "y": trial.suggest_int("y", 0, 9)}
    trial.set_user_attr("worker", "w")
    other = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises((sqlalchemy.exc.OperationalError, optuna.exceptions.StorageInternalError)):
        trial.report(0.5, 0)
    other.execute("ROLLBACK")
    other.close()
    trial.report(0.5, 0)
    stored = optuna.load_study(study_name="locked", storage=url).trials[0]
    assert stored.params == drawn and stored.user_attrs == {"worker": "w"}
