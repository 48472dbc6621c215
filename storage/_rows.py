"""Targeted reads of one study's trials: counts, the k best, the baseline, the latest, pages and streams.

A study of 10,000 trials must not be read whole to show its best trial. On an RDB store (SQLite,
PostgreSQL, MySQL) every question is one or two SQL statements on Optuna's own schema (left unchanged, so
Optuna's CLI and optuna-dashboard still read the store), fetching only the trials asked for. Journal files
and the gRPC proxy have no SQL; there the study is loaded once through Optuna and answered in memory.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import optuna
import sqlalchemy
from optuna.distributions import json_to_distribution

from ._claims import study_engine
from ._keys import Attr


@dataclass(frozen=True)
class TrialRow:
    """One trial as the store holds it, without its intermediate values (only how many there are)."""

    number: int
    state: str  # one of STATES (storage/_keys.py)
    value: float | None
    params: dict[str, Any]  # Optuna's names, external values (a categorical's choice, not its index)
    user_attrs: dict[str, Any]
    reported: int  # intermediate values reported (epochs)
    datetime_start: datetime | None
    datetime_complete: datetime | None

    @property
    def duration(self) -> timedelta | None:
        if self.datetime_start is None or self.datetime_complete is None:
            return None
        return self.datetime_complete - self.datetime_start

    @classmethod
    def of(cls, t: optuna.trial.FrozenTrial) -> TrialRow:
        return cls(t.number, t.state.name, t.value, t.params, t.user_attrs, len(t.intermediate_values),
                   t.datetime_start, t.datetime_complete)


class StudyRows:
    """The reads every view of a study is made of. `best` and `top` rank COMPLETE trials by value in the
    study's direction, ties by trial number."""

    name: str
    direction: str  # minimize or maximize
    user_attrs: dict[str, Any]

    def counts(self) -> Counter[str]:
        raise NotImplementedError

    def top(self, k: int) -> list[TrialRow]:
        raise NotImplementedError

    def baseline(self) -> TrialRow | None:
        """The first trial marked as the baseline (its retries inherit the mark)."""
        raise NotImplementedError

    def latest(self, n: int, states: Iterable[str] | None = None) -> list[TrialRow]:
        """The `n` highest-numbered trials (in `states`), in trial-number order."""
        raise NotImplementedError

    def page(self, after: int = -1, limit: int = 1000, states: Iterable[str] | None = None) -> list[TrialRow]:
        """Up to `limit` trials numbered above `after` (in `states`), in trial-number order."""
        raise NotImplementedError

    def param_names(self) -> list[str]:
        """Every parameter name any trial has, sorted."""
        raise NotImplementedError

    def stream(self, states: Iterable[str] | None = None, chunk: int = 1000) -> Iterator[TrialRow]:
        """Every trial (in `states`), in trial-number order, `chunk` at a time: memory stays flat."""
        after = -1
        while rows := self.page(after, chunk, states):
            after = rows[-1].number
            yield from rows
            rows = []  # let the chunk go before the next is read: one chunk in memory, not two


def study_rows(study: optuna.Study) -> StudyRows:
    """Targeted SQL where the study lives in an RDB store, else the study read once through Optuna."""
    engine = study_engine(study)
    if engine is not None:
        return _SqlRows(engine, study)
    return _LoadedRows(study)


class _LoadedRows(StudyRows):
    def __init__(self, study: optuna.Study) -> None:
        self.name, self.direction = study.study_name, study.direction.name.lower()
        self.user_attrs = study.user_attrs
        self._rows = [TrialRow.of(t) for t in study.get_trials(deepcopy=False)]

    def counts(self) -> Counter[str]:
        return Counter(r.state for r in self._rows)

    def top(self, k: int) -> list[TrialRow]:
        sign = 1 if self.direction == "minimize" else -1
        complete = [r for r in self._rows if r.state == "COMPLETE" and r.value is not None]
        return sorted(complete, key=lambda r: (sign * r.value, r.number))[:k]  # type: ignore[operator]

    def baseline(self) -> TrialRow | None:
        return next((r for r in self._rows if r.user_attrs.get(Attr.BASELINE)), None)

    def latest(self, n: int, states: Iterable[str] | None = None) -> list[TrialRow]:
        return self._in(states)[-n:] if n > 0 else []

    def page(self, after: int = -1, limit: int = 1000, states: Iterable[str] | None = None) -> list[TrialRow]:
        return [r for r in self._in(states) if r.number > after][:limit]

    def param_names(self) -> list[str]:
        return sorted({p for r in self._rows for p in r.params})

    def _in(self, states: Iterable[str] | None) -> list[TrialRow]:
        wanted = set(states) if states is not None else None
        return [r for r in self._rows if wanted is None or r.state in wanted]


class _SqlRows(StudyRows):
    def __init__(self, engine: sqlalchemy.Engine, study: optuna.Study) -> None:
        self.name, self.direction = study.study_name, study.direction.name.lower()
        self._study = study
        self._engine = engine
        self._study_id = study._study_id

    @functools.cached_property
    def user_attrs(self) -> dict[str, Any]:  # type: ignore[override]
        """Read on first use: the worker's budget count after every trial needs only `counts`."""
        return self._study.user_attrs

    def counts(self) -> Counter[str]:
        query = "SELECT state, COUNT(*) FROM trials WHERE study_id = :study GROUP BY state"
        with self._engine.connect() as conn:
            return Counter({_state(s): n for s, n in conn.execute(sqlalchemy.text(query), {"study": self._study_id})})

    def top(self, k: int) -> list[TrialRow]:
        # +inf and -inf are stored as NULL with a value_type: rank them by that first, then by value.
        minimize = self.direction == "minimize"
        order = "ASC" if minimize else "DESC"
        rank = "CASE v.value_type WHEN 'INF_NEG' THEN 0 WHEN 'FINITE' THEN 1 ELSE 2 END"
        query = (f"SELECT t.trial_id FROM trials t JOIN trial_values v ON v.trial_id = t.trial_id "
                 f"WHERE t.study_id = :study AND t.state = 'COMPLETE' AND v.objective = 0 "
                 f"ORDER BY {rank} {order}, v.value {order}, t.number ASC LIMIT :k")
        sign = 1 if minimize else -1  # the rows come back unordered; the query chose which
        return sorted(self._rows_of(query, {"k": k}), key=lambda r: (sign * r.value, r.number))  # type: ignore[operator]

    def baseline(self) -> TrialRow | None:
        query = ("SELECT t.trial_id FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
                 "WHERE t.study_id = :study AND a.key = :key AND a.value_json = 'true' "
                 "ORDER BY t.number ASC LIMIT 1")
        rows = self._rows_of(query, {"key": Attr.BASELINE})
        return rows[0] if rows else None

    def latest(self, n: int, states: Iterable[str] | None = None) -> list[TrialRow]:
        where, params = _state_filter(states)
        query = f"SELECT trial_id FROM trials WHERE study_id = :study{where} ORDER BY number DESC LIMIT :n"
        return sorted(self._rows_of(query, {"n": n, **params}), key=lambda r: r.number)

    def page(self, after: int = -1, limit: int = 1000, states: Iterable[str] | None = None) -> list[TrialRow]:
        where, params = _state_filter(states)
        query = (f"SELECT trial_id FROM trials WHERE study_id = :study AND number > :after{where} "
                 f"ORDER BY number ASC LIMIT :limit")
        return sorted(self._rows_of(query, {"after": after, "limit": limit, **params}), key=lambda r: r.number)

    def param_names(self) -> list[str]:
        query = ("SELECT DISTINCT p.param_name FROM trial_params p JOIN trials t ON t.trial_id = p.trial_id "
                 "WHERE t.study_id = :study")
        with self._engine.connect() as conn:
            return sorted(n for (n,) in conn.execute(sqlalchemy.text(query), {"study": self._study_id}))

    def _rows_of(self, id_query: str, params: dict) -> list[TrialRow]:
        """The trials whose ids `id_query` selects, each fetched whole (but its intermediate values)."""
        with self._engine.connect() as conn:
            ids = [i for (i,) in conn.execute(sqlalchemy.text(id_query), {"study": self._study_id, **params})]
            if not ids:
                return []
            return _load(conn, ids)


def _state(value: Any) -> str:
    """The state as Optuna's enum names it (the column is an enum; drivers hand back its name)."""
    return value.name if hasattr(value, "name") else str(value)


def _state_filter(states: Iterable[str] | None) -> tuple[str, dict]:
    if states is None:
        return "", {}
    names = [s.upper() for s in states]
    marks = ", ".join(f":state{i}" for i in range(len(names)))
    return f" AND state IN ({marks})", {f"state{i}": s for i, s in enumerate(names)}


def _load(conn: sqlalchemy.Connection, ids: list[int]) -> list[TrialRow]:
    """Five queries for any number of trials: the trials, their values, params, user attrs, and how many
    intermediate values each reported."""
    binds = {"ids": ids}

    def rows(query: str) -> list[Any]:
        stmt = sqlalchemy.text(query).bindparams(sqlalchemy.bindparam("ids", expanding=True))
        return list(conn.execute(stmt, binds))

    trials = rows("SELECT trial_id, number, state, datetime_start, datetime_complete FROM trials "
                  "WHERE trial_id IN :ids")
    values = {tid: _value(v, kind) for tid, v, kind in
              rows("SELECT trial_id, value, value_type FROM trial_values WHERE objective = 0 AND trial_id IN :ids")}
    params: dict[int, dict[str, Any]] = {}
    for tid, name, value, distribution in rows("SELECT trial_id, param_name, param_value, distribution_json "
                                               "FROM trial_params WHERE trial_id IN :ids"):
        params.setdefault(tid, {})[name] = _distribution(distribution).to_external_repr(value)
    attrs: dict[int, dict[str, Any]] = {}
    for tid, key, value in rows("SELECT trial_id, key, value_json FROM trial_user_attributes WHERE trial_id IN :ids"):
        attrs.setdefault(tid, {})[key] = json.loads(value)
    reported = dict(rows("SELECT trial_id, COUNT(*) FROM trial_intermediate_values WHERE trial_id IN :ids "
                         "GROUP BY trial_id"))
    return [TrialRow(number, _state(state), values.get(tid), params.get(tid, {}), attrs.get(tid, {}),
                     reported.get(tid, 0), _when(start), _when(complete))
            for tid, number, state, start, complete in trials]


def _value(value: float | None, kind: Any) -> float | None:
    kind = _state(kind)
    if kind == "INF_POS":
        return math.inf
    if kind == "INF_NEG":
        return -math.inf
    return value


def _when(value: datetime | str | None) -> datetime | None:
    """A trial's start or end as Optuna shows it. SQLite hands timestamps back as text, PostgreSQL as datetime;
    Optuna 5 stores them in UTC and shows them in the process's local time (earlier ones store local time)."""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when is None or not _STORED_IN_UTC:
        return when
    return when.replace(tzinfo=UTC).astimezone().replace(tzinfo=None)


def _stored_in_utc() -> bool:
    from optuna.storages._rdb import models

    return hasattr(models.TrialModel, "_datetime_start_utc")  # the column behind a local-time property


_STORED_IN_UTC = _stored_in_utc()


@functools.lru_cache(maxsize=1024)
def _distribution(text: str) -> optuna.distributions.BaseDistribution:
    """Each distinct distribution JSON parsed once (10,000 trials share a few dozen)."""
    return json_to_distribution(text)
