"""Targeted reads (counts, best, baseline, latest, pages, streams) give exactly what reading every trial
through Optuna gives, on an SQLite file and the real PostgreSQL, including infinite values and every state."""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from adamtune.storage import study_rows
from adamtune.storage._rows import _LoadedRows, _SqlRows

DISTRIBUTIONS = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "optimizer": CategoricalDistribution(["adam", "adamw"])}


def trial(state: TrialState, value: float | None, number: int, **attrs) -> optuna.trial.FrozenTrial:
    return create_trial(state=state, value=value if state == TrialState.COMPLETE else None,
                        params={"lr": 1e-3 * (1 + number), "optimizer": ["adam", "adamw"][number % 2]},
                        distributions=DISTRIBUTIONS, user_attrs={"worker": f"w{number}", **attrs},
                        intermediate_values={step: 1.0 / (step + 1) for step in range(number % 4)})


@pytest.fixture(params=["minimize", "maximize"])
def study(request, storage_url, study_name):
    study = optuna.create_study(study_name=study_name, storage=storage_url, direction=request.param)
    values = [0.5, 0.2, math.inf, 0.2, -math.inf, 0.9, 0.1]
    states = [TrialState.COMPLETE] * len(values) + [TrialState.PRUNED, TrialState.FAIL, TrialState.WAITING]
    for number, state in enumerate(states):
        extra = {"baseline": True} if number in (1, 3) else {}
        value = values[number] if number < len(values) else None
        if state == TrialState.WAITING:
            study.enqueue_trial({"lr": 0.01, "optimizer": "adam"})
        else:
            study.add_trial(trial(state, value, number, **extra))
    study.ask()  # one RUNNING (it takes the waiting one), then queue another
    study.enqueue_trial({"lr": 0.02, "optimizer": "adamw"})
    return study


def test_sql_reads_equal_reading_every_trial(study):
    sql, loaded = study_rows(study), _LoadedRows(study)
    assert isinstance(sql, _SqlRows)
    assert sql.counts() == loaded.counts() == {"COMPLETE": 7, "PRUNED": 1, "FAIL": 1, "RUNNING": 1, "WAITING": 1}
    for k in (1, 3, 10):
        assert sql.top(k) == loaded.top(k)
    assert [r.value for r in sql.top(2)] == ([-math.inf, 0.1] if sql.direction == "minimize" else [math.inf, 0.9])
    assert sql.baseline() == loaded.baseline() and sql.baseline().number == 1
    assert sql.latest(3) == loaded.latest(3) and [r.number for r in sql.latest(3)] == [8, 9, 10]
    assert sql.latest(2, ["COMPLETE"]) == loaded.latest(2, ["COMPLETE"])
    assert list(sql.stream(chunk=3)) == list(loaded.stream(chunk=4)) == loaded.page(limit=100)
    assert sql.param_names() == loaded.param_names() == ["lr", "optimizer"]
    inf = next(r for r in sql.page(limit=100) if r.number == 2)
    assert inf.value == math.inf and inf.params == {"lr": 3e-3, "optimizer": "adam"} and inf.reported == 2


@pytest.fixture
def another_time_zone(monkeypatch):
    """A process clock five hours behind UTC (a POSIX TZ rule: no tz database needed), restored afterwards."""
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_start_and_end_times_agree_with_optuna_in_another_time_zone(another_time_zone, storage_url, study_name):
    study = optuna.create_study(study_name=study_name, storage=storage_url)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    study.ask()  # one RUNNING: a start, no end
    through_optuna = [(t.number, t.datetime_start, t.datetime_complete) for t in study.get_trials()]
    for rows in (study_rows(study), _LoadedRows(study)):
        page = rows.page()
        assert [(r.number, r.datetime_start, r.datetime_complete) for r in page] == through_optuna
    assert abs(through_optuna[0][1] - datetime.now()) < timedelta(hours=1), "local time, as Optuna shows it"
