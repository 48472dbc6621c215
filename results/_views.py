"""The facts every view of a study starts from, each derived in one place: state counts, the best
trial, the k best, the baseline trial, the latest trials, and every trial as a stream of TrialRecords.

Each question reads only what it needs from the store (see `adamtune.storage.StudyRows`), so a view of a
10,000-trial study costs about what a view of a 20-trial one does.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Iterator

import optuna

from adamtune.errors import NoCompleteTrial
from adamtune.storage import STATES, StudyRows, TrialRow, study_rows

from ._record import StudyContext, TrialRecord, read_trial


class StudyView:
    """One study as a person reads it: its context (the stored spec) and its trials as TrialRecords."""

    def __init__(self, rows: StudyRows) -> None:
        self.rows = rows
        self.name = rows.name
        self.direction = rows.direction  # minimize or maximize
        self.context = StudyContext.of(rows.name, rows.user_attrs)

    @classmethod
    def of(cls, study: optuna.Study) -> StudyView:
        return cls(study_rows(study))

    def record(self, row: TrialRow) -> TrialRecord:
        return read_trial(row, self.context)

    @functools.cached_property
    def counts(self) -> Counter[str]:
        """Trials per state; 'running' and 'waiting' apart (a queued retry is not running)."""
        return Counter({state.lower(): n for state, n in self.rows.counts().items()})

    def counts_text(self) -> str:
        counts = self.counts
        return ", ".join(f"{counts[s]} {s}" for s in map(str.lower, STATES) if counts[s])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def top(self, k: int) -> list[TrialRecord]:
        """The `k` best complete trials, best first (ties: lower trial number first)."""
        ranked = [self.record(r) for r in self.rows.top(k)]
        if not ranked:
            raise NoCompleteTrial(self.name)
        return ranked

    @functools.cached_property
    def best(self) -> TrialRecord:
        """The best complete trial; NoCompleteTrial when there is none yet."""
        return self.top(1)[0]

    @property
    def best_value(self) -> float | None:
        return self.best.value if self.counts["complete"] else None

    @functools.cached_property
    def baseline(self) -> TrialRecord | None:
        row = self.rows.baseline()
        return self.record(row) if row is not None else None

    def trial(self, number: int) -> TrialRecord | None:
        """Trial `number`, or None when the study has none of that number."""
        rows = self.rows.page(number - 1, 1) if number >= 0 else []
        return self.record(rows[0]) if rows and rows[0].number == number else None

    def latest(self, n: int, states: Iterable[str] | None = None) -> list[TrialRecord]:
        return [self.record(r) for r in self.rows.latest(n, _upper(states))]

    def running(self) -> list[TrialRecord]:
        return [self.record(r) for r in self.rows.stream(["RUNNING"])]

    def stream(self, states: Iterable[str] | None = None) -> Iterator[TrialRecord]:
        """Every trial (in `states`), in trial-number order, read a chunk at a time."""
        return (self.record(r) for r in self.rows.stream(_upper(states)))

    @property
    def trials(self) -> list[TrialRecord]:
        """Every trial; for a large study prefer `stream`, `latest` or `top`."""
        return list(self.stream())

    @property
    def complete(self) -> list[TrialRecord]:
        return list(self.stream(["complete"]))

    def param_names(self) -> list[str]:
        """The sampled parameters' public names: the study's space order first, then any other."""
        stored = self.rows.param_names()
        public = [self.context.space.public_name(n) for n in stored]
        ordered = [n for n in self.context.space if n in public]
        return ordered + [n for n in public if n not in ordered]

    def gain_over_baseline(self) -> float | None:
        """How much the best trial beats the baseline trial on the objective (positive is better)."""
        baseline, best = self.baseline, self.best
        if baseline is None or baseline.state != "complete" or baseline.number == best.number:
            return None
        assert baseline.value is not None and best.value is not None
        return baseline.value - best.value if self.direction == "minimize" else best.value - baseline.value


def _upper(states: Iterable[str] | None) -> list[str] | None:
    return None if states is None else [s.upper() for s in states]
